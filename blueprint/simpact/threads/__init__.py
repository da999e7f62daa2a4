"""Threads: normalised events -> one example per in-scope action, with its context.

Thread shapes (ARCHITECTURE.md):
- text threads: the reply chain rebuilt through ``reply.parent``, oldest first,
  capped at ``max_depth`` messages; the last message is the actor's post or reply;
- reactions (like, unlike, repost, unrepost, quote): ``[target post, actor message]``;
- follow, unfollow, block, unblock: ``[target's latest post before the action, actor message]``;
- post_update, post_delete: ``[original post, actor message]``.

Events are replayed in time order (``time_us``, then input file and line), so input
that arrived out of order gives the same threads as sorted input. Unlike and
unrepost are resolved to their target through the like's or repost's record key;
unfollow and unblock likewise to the user. Deletes and updates of records that were
never seen are counted, not fatal. Reply cycles and self-references are bad input:
the event is skipped, counted, and written with its file and line to the quarantine.

Filters, each configurable and each counted in the report:
- language: a post is kept when its ``langs`` equal ``langs`` exactly (the paper keeps ``['en']``);
- topic: a post is on topic when it matches the keyword lists (default: the 2025
  Canadian federal election list shipped in ``blueprint/resources/topics``); a
  thread is kept when any of its texts is on topic;
- scope: a user is in scope with at least ``min_user_posts`` kept posts and replies.
Only in-scope users' actions become examples; context may come from anyone.

Every event ends in exactly one bucket of the report: an example, a skip reason, a
quarantine reason, or ``actor_out_of_scope``.

Modules: :mod:`.topics` (the keyword lists), :mod:`.sql` (DuckDB: order, ids, joins),
:mod:`.replay` (the rules, over integers), :mod:`.stage` (:func:`build_threads`).
"""

from blueprint.simpact.threads.stage import (
                                             MESSAGE_TYPE,
                                             THREAD_SCHEMA,
                                             USER_TEXT_SCHEMA,
                                             ThreadConfig,
                                             ThreadReport,
                                             build_threads,
                                             read_threads,
)
from blueprint.simpact.threads.topics import (
                                             DEFAULT_TOPICS,
                                             default_keywords,
                                             keyword_pattern,
                                             read_keywords,
                                             topic_keywords,
)

__all__ = ["DEFAULT_TOPICS", "MESSAGE_TYPE", "THREAD_SCHEMA", "USER_TEXT_SCHEMA", "ThreadConfig", "ThreadReport",
           "build_threads", "default_keywords", "keyword_pattern", "read_keywords", "read_threads", "topic_keywords"]
