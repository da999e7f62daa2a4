"""Tiny random models made on the spot, for tests, benchmarks and the offline notebook (nothing is downloaded)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def make_tiny_causal_lm(path: str | Path, texts: Iterable[str], *, vocab_size: int = 400, hidden: int = 32,
                        layers: int = 2, seed: int = 0) -> Path:
    """A random Llama-style causal LM with a byte-level BPE tokenizer trained on ``texts`` and a ChatML template.

    Weights are initialised with a wide spread (std 0.2) and the output layer is not tied
    to the embeddings, so a few steps of training visibly move the loss.
    """
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
    path = Path(path)
    LlamaForCausalLM(cfg).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


_BERT_WORDS = ("the a of to and in is for on that with carbon tax vote election housing poll debate liberal "
               "conservative ndp bloc climate rent workers union trump tariffs canada quebec").split()


def make_tiny_bert(path: str | Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random BERT encoder with a small word-piece vocabulary, saved as a transformers folder.

    Its vectors mean nothing; it stands in for the embedding model where only the
    pipeline's mechanics and speed matter (tests, the scale benchmark).
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast  # type: ignore[attr-defined]  # lazy module

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_BERT_WORDS,
             *"abcdefghijklmnopqrstuvwxyz0123456789.,!?#@'",
             *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789")]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True, model_max_length=128)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=128)
    BertModel(cfg).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path
