"""The dataset card: ``dataset_card.md`` filled in with the export's own numbers.

The YAML header (``configs:`` and ``dataset_info:``) is produced from the same
``datasets.Features`` object the Parquet files are written with, so the card and the
data cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from blueprint.actions import ACTIONS
from blueprint.data import SPLITS, config_name, features
from blueprint.metrics.config import MIN_ROWS

if TYPE_CHECKING:
    from blueprint.simpact.config import BuildConfig

_PRIVACY = """\
- **PII.** Every text went through an offline scrubber with one recognizer per type: EMAIL_ADDRESS,
  PHONE_NUMBER (the `phonenumbers` library), URL, IP_ADDRESS (v4 and v6), CREDIT_CARD (Luhn and issuer
  checked), CRYPTO (Bitcoin Base58Check and Bech32, Ethereum), USERNAME (any AT Protocol handle after `@`,
  custom domains included), DID and AT_URI. Matches are replaced by `<TYPE>` tags. Person names are kept on
  purpose, as in the paper: political content depends on politicians' and parties' names.
  Replacements made: {pii}.
- **Time.** No absolute time is released: `relative_integer_time` is a rank in time order ({time}).
- **Users.** `user_id` is HMAC-SHA256 over (DID, thread identity) with a secret key that is not released:
  one user has one id inside a thread and unlinkable ids across threads.
- **Removal requests.** {removal}
- Texts are otherwise verbatim and can be searched for on Bluesky; a determined reader may find their
  authors that way. Do not attempt to re-identify users."""

_RELEASE_PRIVACY = """\
The texts, user ids and times are the release's own: its authors scrubbed personal information, replaced
user identifiers by pseudonyms and times by ranks, as their paper describes; `blueprint import-release`
changes none of them. Texts can still be searched for on Bluesky, and a determined reader may find their
authors that way. Do not attempt to re-identify users."""


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def yaml_header(manifest: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The card's YAML: licence, tags, ``configs:`` with data files per split, and ``dataset_info:``."""
    import datasets

    feats = features()
    info = datasets.DatasetInfo(features=feats)._to_yaml_dict()["features"]
    configs, infos = [], []
    names = list(manifest["configs"])
    default = config_name(max(manifest["partitions"]))
    # the build's fingerprint is in every shard's name: datasets keys its cache of a local folder on the data
    # files' paths relative to a folder of the same name, so two builds must never share those paths
    fp = manifest["build_fingerprint"]
    for name in names:
        entry: dict[str, Any] = {"config_name": name, "data_files": [
            {"split": s, "path": f"data/{name}/{s}-{fp}-*.parquet"} for s in SPLITS]}
        if name == default:
            entry["default"] = True
        configs.append(entry)
        # Typed features for the partition configs only: the per-cluster configs share them and carry the
        # same features in their Parquet metadata. Repeating them for every persona would make the card
        # thousands of YAML lines, which datasets parses (in pure Python) on every load.
        # Split sizes live in blueprint_manifest.json: datasets wants byte counts in dataset_info too.
        if name.endswith("_clusters"):
            infos.append({"config_name": name, "features": info})
    header = {
        "license": context.get("license", "other"),
        "language": ["en"],
        "pretty_name": context.get("title", "BluePrint"),
        "task_categories": ["text-generation", "text-classification"],
        "tags": ["social-media", "bluesky", "persona", "next-action-prediction", "blueprint"],
        "size_categories": [_size_category(manifest["rows"])],
        "configs": configs,
        "dataset_info": infos,
    }
    return yaml.dump(header, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=1000).rstrip()


class _NoAliasDumper(yaml.SafeDumper):
    """Writes repeated features out in full: anchors and aliases confuse readers of the card."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < bound:
            return label
    return "10M<n<100M"


def _reports_section(manifest: Mapping[str, Any]) -> str:
    reports = manifest.get("cluster_reports") or []
    if not reports:
        return "No cluster report was made for this build."
    lines = ["Each partition has a report: sizes, top TF-IDF terms of each cluster (from the scrubbed texts), "
             "the action distribution per cluster, and a 2-D map of the user embeddings coloured by cluster.", ""]
    for path in reports:
        stem = path.rsplit("/", 1)[-1].removesuffix(".json")
        k = stem.split("_")[1]
        lines.append(f"- **{k} clusters**: [table]({path[:-5]}.md), [numbers]({path}), "
                     f"[map]({path[:-5]}.png)")
    first = reports[-1][:-5]
    lines += ["", f"![Persona map]({first}.png)"]
    return "\n".join(lines)


def _time_text(manifest: Mapping[str, Any]) -> str:
    if manifest.get("time_mode") == "cluster":
        return "counted inside each persona cluster of each config"
    return "counted over the whole dataset, the same in every config"


def _removal_text(manifest: Mapping[str, Any]) -> str:
    r = manifest.get("removal") or {}
    if not r.get("dids_listed"):
        return ("None were given for this build. Threads whose last author asks to be removed are dropped, and "
                "their messages in other threads are replaced by `<REMOVED>` (`blueprint build --remove-dids`).")
    return (f"{r['dids_listed']} users asked to be removed: {r['threads_dropped']} of their threads were dropped "
            f"and {r['messages_replaced']} of their messages in other threads read `<REMOVED>`; they have no persona.")


def render_card(manifest: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The full README.md of an exported dataset."""
    template = resources.files("blueprint").joinpath("resources/dataset_card.md").read_text(encoding="utf-8")
    configs = manifest["configs"]
    action_rows = [(a, manifest["actions"].get(a, 0)) for a in ACTIONS]
    cluster_tables = []
    for k in manifest["partitions"]:
        name = config_name(k)
        users = manifest["users_per_cluster"][name]  # None: not known (an imported release's pseudonymous ids)
        threads = manifest["cluster_sizes_in_threads"][name]
        rows = [(c, "n/a" if users is None else users.get(str(c), users.get(c, 0)),
                 threads.get(str(c), threads.get(c, 0))) for c in range(k)]
        cluster_tables.append(f"**{name}**\n\n" + _table(("cluster", "users", "threads"), rows))
    split_rows = [(name, *(configs[name][s] for s in SPLITS)) for name in configs
                  if name.endswith("_clusters")]
    first_k = max(manifest["partitions"])
    pii = ", ".join(f"{k} {v}" for k, v in manifest.get("pii_replaced", {}).items()) or "none"
    values = {
        "imported": bool(context.get("imported")),
        "min_rows": MIN_ROWS,
        "test_rows_table": _table(("config", "test rows", "readable"),
                                  [(name, configs[name]["test"], "yes" if configs[name]["test"] >= MIN_ROWS
                                    else f"no (under {MIN_ROWS})") for name in configs]),
        "yaml_header": yaml_header(manifest, context),
        "title": context.get("title", "BluePrint"),
        "source": context.get("source", "public Bluesky records"),
        "secret_note": context.get("secret_note", ""),
        "per_cluster_max_k": context.get("per_cluster_max_k", 100),
        "example_config": config_name(first_k),
        "example_cluster_config": config_name(min(manifest["partitions"]), 0),
        "build_description": context.get("build_description", "Built with `blueprint build`."),
        "fractions": " / ".join(f"{f:g}" for f in manifest["fractions"]),
        "actions": ", ".join(f"`{a}`" for a in ACTIONS),
        "rows": manifest["rows"],
        "action_table": _table(("action", "threads"), action_rows) + "\n\n"
        + _table(("config", *SPLITS), split_rows),
        "cluster_tables": "\n\n".join(cluster_tables),
        "privacy_section": _RELEASE_PRIVACY if context.get("imported") else
        _PRIVACY.format(pii=pii, time=_time_text(manifest), removal=_removal_text(manifest)),
        "cluster_reports": _reports_section(manifest),
        "max_depth": context.get("max_depth", 5),
        "langs": context.get("langs", "['en']"),
    }
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.from_string(template).render(**values)


def build_description(cfg: BuildConfig, carried: Mapping[int, Mapping[str, Any]] | None = None) -> str:
    """The card's account of how this build was made, from its settings (and the personas it carried over)."""
    c = cfg.cluster
    personas = (f"users were clustered by constrained k-means (k = {', '.join(map(str, c.partitions))}; at least "
                f"{c.size_min} users per cluster).")
    if carried:
        shares = "; ".join(f"k = {k}: {v['kept_cluster']} of {v['users_stayed']} ({v['kept_share']:.1%}), "
                           f"{v['users_new']} new users placed at the nearest persona, {v['moved_by_repair']} moved "
                           "to refill clusters under the minimum size" for k, v in sorted(carried.items()))
        personas = ("the personas were carried over from a previous build (`--personas-from`): its centroids and "
                    "numbering were kept, so a user who stays keeps their cluster and a config names the same "
                    f"persona as before. Users of the previous build who stay and keep their cluster id: {shares}.")
    return (
        "1. **Ingest.** Jetstream commits were decoded and mapped to the 13 actions; malformed lines were "
        "quarantined and counted.\n"
        f"2. **Threads.** Reply chains were rebuilt through `reply.parent` (at most {cfg.threads.max_depth} "
        "messages); reactions pair the target post with the actor's message; follows and blocks take the "
        "target's latest post as context; updates and deletes carry the original post. Only users with at least "
        f"{cfg.threads.min_user_posts} posts and replies in {list(cfg.threads.langs or ['any language'])} "
        "are in scope.\n"
        f"3. **Personas.** Each user is the mean embedding of their posts and replies (model "
        f"`{cfg.embed.model}`, {cfg.embed.pooling} pooling, max length {cfg.embed.max_length}); {personas}\n"
        "4. **Privacy.** Texts were PII-scrubbed, times replaced by ranks"
        f" ({'over the whole dataset' if cfg.export.time_mode == 'global' else 'inside each cluster'}), user ids by "
        "per-thread keyed pseudonyms, and removal requests honoured (see below)."
    )
