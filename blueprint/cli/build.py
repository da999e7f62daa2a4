"""``blueprint build``: the SIMPACT pipeline on raw records, from Jetstream, CAR or thread files to a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._args import default, floats, ints, option, show
from blueprint.embedding import BACKENDS
from blueprint.errors import BadInputError
from blueprint.simpact.config import BuildConfig, ClusterConfig, EmbedConfig, ExportConfig, IngestConfig, ThreadConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="run the SIMPACT pipeline on raw records")
    p.add_argument("inputs", nargs="+", type=Path,
                   help="Jetstream JSONL (.jsonl, .gz, .zst), repository exports (.car), getPostThread "
                        "responses (.json), or folders of them")
    p.add_argument("--out", required=True, type=Path, help="dataset directory to write")
    p.add_argument("--work-dir", type=Path, default=None, help="intermediate results (default: <out>-work)")
    # personas
    option(p, "--partitions", type=ints, source=ClusterConfig, help="cluster counts, e.g. 2,25 (default: {default})")
    option(p, "--size-min", type=int, source=ClusterConfig,
           help="the fewest users a persona may have (default: %(default)s, as the paper)")
    option(p, "--size-max", type=int, source=ClusterConfig,
           help="the most users a persona may have (default: none; setting it uses the exact solver)")
    option(p, "--cluster-method", choices=("auto", "exact", "fast"), source=ClusterConfig, field="method",
           help="exact (k-means-constrained), fast (k-means plus repair) or auto (default)")
    option(p, "--seed", type=int, source=ClusterConfig, help="random seed (default: %(default)s)")
    p.add_argument("--personas-from", type=Path, default=None, metavar="PREVIOUS",
                   help="keep the personas of a previous build (its work folder, or its dataset folder): users who "
                        "stay keep their cluster, new users go to the nearest persona, and only clusters left "
                        "under --size-min are refilled; for a rebuild after removal requests (default: cluster "
                        "afresh)")
    p.add_argument("--secret-file", type=Path, default=None,
                   help="pseudonym secret (at least 32 bytes); created there when missing (default: a new "
                        "secret in the work folder)")
    # embeddings
    option(p, "--model", source=EmbedConfig, help="embedding model: 'default', a local folder or a Hub id")
    option(p, "--pooling", choices=("auto", "cls", "mean"), source=EmbedConfig,
           help="sentence pooling of the embedding model (default: what the model declares)")
    option(p, "--max-length", type=int, source=EmbedConfig,
           help="tokens per text for the embedding model (default: %(default)s)")
    option(p, "--batch-size", type=int, source=EmbedConfig, help="texts per embedding batch (default: %(default)s)")
    option(p, "--embed-backend", choices=BACKENDS, source=EmbedConfig, field="backend",
           help="how the embedding model runs: torch (default); onnx (ONNX Runtime); onnx-int8; openvino; "
                "openvino-bf16 (the fastest on a CPU with bfloat16 instructions, cosine >= 0.999 to torch: "
                "see benchmarks/bench_embed.py). All but torch need pip install -e \".[fast-embed]\"")
    p.add_argument("--include-quotes", action="store_true", help="quotes count towards a user's embedding too")
    option(p, "--embed-cache", source=EmbedConfig, field="cache_dir",
           help="embedding cache folder; 'default' is $BLUEPRINT_CACHE/embeddings, 'none' disables it")
    option(p, "--n-init", type=int, source=ClusterConfig, help="k-means starts per partition (default {default})")
    # threads
    option(p, "--langs", default=show(_default_langs()), field="langs",
           help="kept post languages, comma-separated; 'any' keeps all")
    option(p, "--topics", nargs="+", default=["default"], metavar="FILE",
           help="topic keyword list files (one keyword per line); 'default' is the shipped 2025 "
                "Canadian federal election list, 'none' keeps every topic")
    option(p, "--min-user-posts", type=int, source=ThreadConfig,
           help="kept posts and replies a user needs (default {default})")
    option(p, "--max-depth", type=int, source=ThreadConfig, help="messages per thread at most")
    # the release
    option(p, "--splits", type=floats, source=ExportConfig, field="fractions",
           help="train,validation,test fractions")
    option(p, "--pii-region", source=BuildConfig,
           help="default region for phone numbers without country code")
    option(p, "--remove-dids", type=Path, default=None, metavar="FILE",
           help="removal requests, one DID per line: their threads are dropped and their messages in "
                "other threads read <REMOVED>")
    option(p, "--hold-out-labels", type=Path, default=None, metavar="FILE",
           help="release the test split without labels and write them to FILE (outside the dataset)")
    option(p, "--time-mode", choices=("global", "cluster"), source=ExportConfig,
           help="relative_integer_time ranks over the whole dataset (default, as the paper) or per cluster")
    option(p, "--title", source=BuildConfig, help="the dataset's title on its card (default: %(default)s)")
    # how it runs
    option(p, "--workers", type=int, source=IngestConfig,
           help="worker processes for ingest and for the export's PII scrubbing (default 0: one per CPU)")
    p.add_argument("--resume", action="store_true", help="skip finished stages, continue a killed one")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (this machine, default) or ray (a local Ray instance, or the cluster at "
                        "--ray-address); the dataset is the same bytes either way")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --engine ray: join this Ray cluster (e.g. ray://head:10001 or auto)")
    option(p, "--num-gpus", type=float, source=_ray_engine(),
           help="with --engine ray: GPUs for the embedding actors (one actor per GPU)")
    option(p, "--embed-actors", type=int, source=_ray_engine(),
           help="with --engine ray: embedding actors (default: one per GPU, else one)")


def _default_langs() -> tuple[str, ...]:
    langs = default(ThreadConfig, "langs")
    return langs if langs is not None else ("any",)


def _ray_engine():
    from blueprint.simpact.ray_engine import RayEngine

    return RayEngine


def config_from(a: argparse.Namespace) -> BuildConfig:
    """The build's settings from the parsed options."""
    from blueprint.simpact.privacy import read_removal_list
    from blueprint.simpact.threads import topic_keywords

    langs = None if a.langs.strip().lower() == "any" else tuple(x.strip() for x in a.langs.split(",") if x.strip())
    return BuildConfig(
        ingest=IngestConfig(workers=a.workers),
        threads=ThreadConfig(max_depth=a.max_depth, langs=langs, topics=topic_keywords(a.topics),
                             min_user_posts=a.min_user_posts),
        embed=EmbedConfig(model=a.model, pooling=a.pooling, max_length=a.max_length, batch_size=a.batch_size,
                          include_quotes=a.include_quotes, backend=a.embed_backend,
                          cache_dir=None if a.embed_cache == "none" else a.embed_cache),
        cluster=ClusterConfig(partitions=a.partitions, size_min=a.size_min, size_max=a.size_max,
                              method=a.cluster_method, seed=a.seed, n_init=a.n_init,
                              personas_from=str(a.personas_from) if a.personas_from else None),
        export=ExportConfig(fractions=a.splits, time_mode=a.time_mode),
        pii_region=a.pii_region, title=a.title,
        remove_dids=read_removal_list(a.remove_dids) if a.remove_dids else (),
        hold_out_labels=str(a.hold_out_labels) if a.hold_out_labels else None)


def run(a: argparse.Namespace) -> None:
    from blueprint.simpact.pipeline import build

    cfg = config_from(a)
    options = dict(work_dir=a.work_dir, secret_file=a.secret_file, resume=a.resume, progress=not a.quiet)
    if a.engine == "ray":
        from blueprint.simpact.ray_engine import RayEngine

        with RayEngine(a.ray_address, num_gpus=a.num_gpus, embed_actors=a.embed_actors) as engine:
            r = build(a.inputs, a.out, cfg, engine=engine, **options)
    else:
        if a.ray_address or a.num_gpus or a.embed_actors:
            raise BadInputError("--ray-address, --num-gpus and --embed-actors need --engine ray", field="engine")
        r = build(a.inputs, a.out, cfg, **options)
    e = r.reports["export"]
    print(f"dataset: {r.dataset_dir} ({e['rows']} threads, {len(e['configs'])} configs)")
    if cfg.remove_dids:
        print(f"removal: {len(cfg.remove_dids)} DIDs listed; {e['dropped'].get('removal_request', 0)} threads "
              f"dropped; {e['removed_messages']} messages replaced by <REMOVED>")
    for k, part in r.reports["cluster"]["partitions"].items():
        c = part.get("carried_over")
        if c:
            print(f"personas {k}_clusters: carried over; {c['kept_cluster']} of {c['users_stayed']} staying users "
                  f"keep their cluster ({c['kept_share']:.1%}), {c['users_new']} new, {c['moved_by_repair']} moved")
    print(f"work:    {r.work_dir} (reports per stage; raw data, keep it private)")
    print(f"secret:  {r.secret_file}")
