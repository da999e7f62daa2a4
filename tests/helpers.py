"""Small builders of real-shaped Jetstream lines for tests."""

from __future__ import annotations

from pathlib import Path

import orjson

POST = "app.bsky.feed.post"


def uri(did: str, rkey: str, collection: str = POST) -> str:
    return f"at://{did}/{collection}/{rkey}"


def commit(did: str, t: int, collection: str, operation: str, rkey: str, record: dict | None = None) -> dict:
    c = {"rev": f"rev{t}", "operation": operation, "collection": collection, "rkey": rkey}
    if record is not None:
        c["record"] = {"$type": collection, "createdAt": "2025-03-23T00:00:00.000Z", **record}
        c["cid"] = f"bafy{rkey}"
    return {"did": did, "time_us": t, "kind": "commit", "commit": c}


def post(did: str, t: int, rkey: str, text: str, *, parent: str | None = None, root: str | None = None,
         quote: str | None = None, langs=("en",)) -> dict:
    record: dict = {"text": text}
    if langs is not None:
        record["langs"] = list(langs)
    if parent is not None:
        record["reply"] = {"parent": {"uri": parent, "cid": "c"}, "root": {"uri": root or parent, "cid": "c"}}
    if quote is not None:
        record["embed"] = {"$type": "app.bsky.embed.record", "record": {"uri": quote, "cid": "c"}}
    return commit(did, t, POST, "create", rkey, record)


def write_lines(path: Path, events, raw_lines=()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for e in events:
            fh.write(orjson.dumps(e) + b"\n")
        for raw in raw_lines:
            fh.write(raw + b"\n")
    return path


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def make_tiny_causal_lm(path: Path, texts, *, vocab_size: int = 400, hidden: int = 32, layers: int = 2,
                        seed: int = 0) -> Path:
    """A tiny random Llama-style causal LM with a byte-level BPE tokenizer trained on ``texts`` and a ChatML template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|pad|>", eos_token="<|im_end|>",
                                  bos_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"])
    tok.chat_template = CHATML
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=2048, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=tok.bos_token_id, tie_word_embeddings=False, initializer_range=0.2)
    LlamaForCausalLM(cfg).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path
