"""Writes the tiny random models of the model-family tests and their reference outputs.

One small sentence-transformers directory per architecture the backend serves besides the real
all-MiniLM-L6-v2 (XLM-RoBERTa, ModernBERT, a Qwen3 decoder with last-token pooling, BERT and
XLM-RoBERTa cross-encoders, sequence classifiers of 2 and 3 labels, and a BERT SPLADE model),
each with a tokenizer trained here on the benchmark corpus, random weights from a fixed seed, and
`reference.json`: what sentence-transformers (`SentenceTransformer`, `CrossEncoder`,
`SparseEncoder`) or transformers (`AutoModelForSequenceClassification`) answers for 24 inputs,
each encoded alone and all in one batch, and the token vectors of the embedders' first inputs. Weights are drawn wider than the libraries' 0.02 default so that the vectors of different
inputs are far apart and a wrong forward pass cannot pass the comparison by accident.

`cargo xtask tiny-models` runs it in the peer venv (pinned transformers and
sentence-transformers): python scripts/make_tiny_models.py benches/data crates/backend-candle/tests/tiny
"""

import json
import math
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import CrossEncoder, SentenceTransformer, SparseEncoder
from sentence_transformers.base.modules import Transformer as BaseTransformer
from sentence_transformers.sparse_encoder.modules import SpladePooling
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SEED = 7
MAX_SEQ_LENGTH = 48
VOCAB = 800
HIDDEN = 64

INPUTS = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "   ",
    "Hello, world!",
    "Das ist ein kleiner Test auf Deutsch.",
    "Ceci est une phrase en français, avec des accents : é, è, à.",
    "这是一个中文句子，用来测试分词。",
    "これは日本語の文です。",
    "Это предложение на русском языке.",
    "هذه جملة باللغة العربية.",
    "Emoji 🚀🔥 and symbols ∑ ≠ ∞",
    "numbers 3.14159 and 2026-11-27, ids #42",
    "UPPER CASE AND lower case",
    "a",
    "The cat sat on the mat while the dog slept in the sun, and nobody cared at all.",
    " ".join(["long input that must be cut at the model's maximum length"] * 12),
    "Search query: how do vector databases index embeddings?",
    "tab\tand\nnew line",
    "repeated repeated repeated repeated repeated",
    "Short.",
    "A second sentence about machine learning models and inference servers.",
    "Mixed 中文 and English in one line",
    "Ελληνικά γράμματα και λέξεις.",
]

QUERY = "how do embedding servers batch requests?"

# Inputs whose token vectors (`embed_all`) the embedders' references keep.
TOKEN_INPUTS = 4


def corpus(data: Path) -> list[str]:
    lines = [line.strip() for line in (data / "short_1024.txt").read_text().splitlines() if line.strip()]
    return lines + INPUTS


def train(tok: Tokenizer, trainer, data: Path) -> Tokenizer:
    tok.train_from_iterator(corpus(data), trainer=trainer)
    return tok


def word_counts(data: Path, normalizer, pre_tokenizer) -> list[tuple[str, int]]:
    """Words of the corpus as the tokenizer splits them, most frequent first (ties by text)."""
    counts = Counter()
    for line in corpus(data):
        text = normalizer.normalize_str(line) if normalizer else line
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(text))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def template(tok: Tokenizer, single: str, pair: str) -> None:
    """Adds the special tokens the way `single` and `pair` place them (`[SEP]:1`: segment 1)."""
    names = sorted({t.split(":")[0] for t in f"{single} {pair}".split() if not t.startswith("$")})
    tok.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(n, tok.token_to_id(n)) for n in names]
    )


def wordpiece(data: Path) -> transformers.PreTrainedTokenizerFast:
    """A WordPiece vocabulary built by counting (the library's trainer breaks ties at random):
    the special tokens, every character alone and as a continuation, then the commonest words."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = word_counts(data, normalizer, pre_tokenizer)
    chars = sorted({c for word, _ in words for c in word})
    vocab = specials + chars + ["##" + c for c in chars]
    vocab += [w for w, _ in words if w not in set(vocab)][: max(0, VOCAB - len(vocab))]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece()
    template(tok, "[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1")
    return transformers.BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                          cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def unigram(data: Path) -> transformers.PreTrainedTokenizerFast:
    """A SentencePiece-style unigram vocabulary built by counting: special tokens, every
    character, then the commonest words, each scored by its log frequency."""
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    normalizer, pre_tokenizer = normalizers.NFKC(), pre_tokenizers.Metaspace()
    words = word_counts(data, normalizer, pre_tokenizer)
    total = sum(n for _, n in words)
    chars = Counter()
    for word, n in words:
        chars.update({c: n for c in word})
    pieces = [(t, 0.0) for t in specials]
    pieces += [(c, math.log(n / total) - 5.0) for c, n in sorted(chars.items())]
    seen = {p for p, _ in pieces}
    pieces += [(w, math.log(n / total)) for w, n in words if w not in seen][: max(0, VOCAB - len(pieces))]
    tok = Tokenizer(models.Unigram(pieces, unk_id=specials.index("<unk>")))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.Metaspace()
    template(tok, "<s> $A </s>", "<s> $A </s> </s> $B </s>")
    return transformers.XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                unk_token="<unk>", pad_token="<pad>", cls_token="<s>",
                                                sep_token="</s>", mask_token="<mask>")


def byte_bpe(data: Path, specials: list[str], single: str, pair: str) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    train(tok, trainer, data)
    template(tok, single, pair)
    return tok


def widen(model: torch.nn.Module, std: float) -> None:
    """Redraws every weight matrix and bias with a wider spread than the default init."""
    torch.manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() and p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn_like(p)) if name.endswith("weight") else p.normal_(0, 0.1)
            else:
                p.normal_(0, std)


def save_hf(model, tokenizer, path: Path) -> None:
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


def embedder(name: str, out: Path, model, tokenizer, pooling: str, prompts: dict, default_prompt: str | None,
             padding_side: str = "right") -> dict:
    tokenizer.padding_side = padding_side
    with tempfile.TemporaryDirectory() as tmp:
        save_hf(model, tokenizer, Path(tmp))
        transformer = Transformer(tmp, max_seq_length=MAX_SEQ_LENGTH)
        st = SentenceTransformer(modules=[transformer, Pooling(HIDDEN, pooling), Normalize()], prompts=prompts,
                                 default_prompt_name=default_prompt, device="cpu")
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        st.save(str(target))
    st = SentenceTransformer(str(target), device="cpu")
    record = {"kind": "embedder", "pooling": pooling, "max_seq_length": MAX_SEQ_LENGTH, "inputs": INPUTS}
    # Every prompt as the model's own default would apply it (none, when no default is set).
    alone = np.stack([st.encode([t], batch_size=1, prompt="")[0] for t in INPUTS])
    batched = st.encode(INPUTS, batch_size=len(INPUTS), prompt="")
    record["alone"] = alone.tolist()
    record["batched"] = batched.tolist()
    check(name, alone, batched)
    record["prompted"] = {}
    for prompt_name in prompts:
        vectors = st.encode(INPUTS, batch_size=len(INPUTS), prompt_name=prompt_name)
        tokens = [len(st.tokenize([prompts[prompt_name] + t])["input_ids"][0]) for t in INPUTS]
        record["prompted"][prompt_name] = {"vectors": vectors.tolist(), "tokens": tokens}
    record["tokens"] = [len(st.tokenize([t])["input_ids"][0]) for t in INPUTS]
    per_token = st.encode(INPUTS[:TOKEN_INPUTS], batch_size=TOKEN_INPUTS, prompt="", output_value="token_embeddings")
    record["token_vectors"] = [t.numpy().tolist() for t in per_token]
    return record


def classifier(name: str, out: Path, model, tokenizer, labels: list[str]) -> dict:
    """A sequence classifier of several labels: transformers' raw logits for each input alone
    and for each (QUERY, input) pair, all in one batch and each alone."""
    widen(model, 0.3)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    target = out / name
    shutil.rmtree(target, ignore_errors=True)
    save_hf(model, tokenizer, target)
    ce = CrossEncoder(str(target), max_length=MAX_SEQ_LENGTH, device="cpu")
    ce.save(str(target))
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(str(target)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(target))

    def logits(*texts) -> np.ndarray:
        batch = tok(*texts, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt")
        with torch.no_grad():
            return hf(**batch).logits.numpy()

    singles, pairs = logits(INPUTS), logits([QUERY] * len(INPUTS), INPUTS)
    alone = np.concatenate([logits([t]) for t in INPUTS])
    assert np.abs(singles - alone).max() < 1e-5, name
    assert singles.std(0).min() > 0.5, f"{name}: the logits are too alike to test anything"
    print(f"{name}: {len(labels)} labels, logits from {singles.min():.3f} to {singles.max():.3f}")
    return {"kind": "classifier", "max_seq_length": MAX_SEQ_LENGTH, "query": QUERY, "inputs": INPUTS,
            "labels": labels, "logits": singles.tolist(), "pair_logits": pairs.tolist()}


def splade(name: str, out: Path, model, tokenizer) -> dict:
    """A SPLADE model (masked-LM head, max of log(1 + ReLU) over the tokens) and what
    `SparseEncoder` answers: each input's non-zero (index, value) pairs, alone and batched."""
    widen(model, 0.3)
    with tempfile.TemporaryDirectory() as tmp:
        save_hf(model, tokenizer, Path(tmp))
        transformer = BaseTransformer(tmp, transformer_task="fill-mask", max_seq_length=MAX_SEQ_LENGTH)
        encoder = SparseEncoder(modules=[transformer, SpladePooling("max")], device="cpu")
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        encoder.save(str(target))
    encoder = SparseEncoder(str(target), device="cpu")
    batched = encoder.encode(INPUTS, batch_size=len(INPUTS), convert_to_tensor=True, convert_to_sparse_tensor=False)
    alone = torch.stack([encoder.encode([t], batch_size=1, convert_to_tensor=True,
                                        convert_to_sparse_tensor=False)[0] for t in INPUTS])
    error = ((batched - alone).abs().max() / alone.abs().max()).item()
    assert error < 1e-5, f"{name}: alone and batched differ by {error:.2e} of the largest value"
    active = (alone > 0).sum(1).float()
    print(f"{name}: {active.min():.0f} to {active.max():.0f} of {alone.shape[1]} dimensions active")
    assert active.max() < alone.shape[1], f"{name}: nothing is sparse"
    sparse = [[[int(i), float(v[i])] for i in torch.nonzero(v).flatten()] for v in alone]
    return {"kind": "splade", "max_seq_length": MAX_SEQ_LENGTH, "inputs": INPUTS, "vocab_size": alone.shape[1],
            "sparse": sparse, "tokens": [len(encoder.tokenize([t])["input_ids"][0]) for t in INPUTS]}


def reranker(name: str, out: Path, model, tokenizer) -> dict:
    """A cross-encoder with one output, and its raw and sigmoid scores for (QUERY, input) pairs."""
    widen(model, 0.3)
    target = out / name
    shutil.rmtree(target, ignore_errors=True)
    save_hf(model, tokenizer, target)
    ce = CrossEncoder(str(target), max_length=MAX_SEQ_LENGTH, device="cpu")
    ce.save(str(target))
    ce = CrossEncoder(str(target), device="cpu")
    pairs = [(QUERY, t) for t in INPUTS]
    raw = ce.predict(pairs, batch_size=len(pairs), activation_fn=torch.nn.Identity())
    alone = np.array([ce.predict([p], batch_size=1, activation_fn=torch.nn.Identity())[0] for p in pairs])
    scores = ce.predict(pairs, batch_size=len(pairs))
    assert np.abs(raw - alone).max() < 1e-5
    print(f"{name}: raw scores from {raw.min():.3f} to {raw.max():.3f}")
    return {"kind": "reranker", "max_seq_length": MAX_SEQ_LENGTH, "query": QUERY, "inputs": INPUTS,
            "raw_scores": raw.tolist(), "scores": scores.tolist()}


def check(name: str, alone: np.ndarray, batched: np.ndarray) -> None:
    def unit(v):
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    agree = (unit(alone) * unit(batched)).sum(1).min()
    spread = unit(alone) @ unit(alone).T
    apart = spread[~np.eye(len(alone), dtype=bool)].mean()
    print(f"{name}: alone vs batched worst cosine {agree:.6f}, mean cosine between inputs {apart:.3f}")
    assert agree > 0.9999, name
    assert apart < 0.9, f"{name}: vectors of different inputs are too alike to test anything"


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    references = {}

    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=96)

    tok = unigram(data)
    config = transformers.XLMRobertaConfig(**common, max_position_embeddings=MAX_SEQ_LENGTH + 2, pad_token_id=1,
                                           bos_token_id=0, eos_token_id=2, type_vocab_size=1)
    model = transformers.XLMRobertaModel(config, add_pooling_layer=False).eval()
    widen(model, 0.3)
    references["xlm-roberta"] = embedder("xlm-roberta", out, model, tok, "mean",
                                         {"query": "query: ", "passage": "passage: "}, None)

    mb_tok = byte_bpe(data, ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"], "[CLS] $A [SEP]",
                      "[CLS] $A [SEP] $B [SEP]")
    mb_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=mb_tok, unk_token="[UNK]", cls_token="[CLS]",
                                                  sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]")
    config = transformers.ModernBertConfig(**{**common, "num_hidden_layers": 3}, max_position_embeddings=128, global_attn_every_n_layers=2,
                                           local_attention=16, pad_token_id=mb_tok.pad_token_id,
                                           cls_token_id=mb_tok.cls_token_id, sep_token_id=mb_tok.sep_token_id,
                                           bos_token_id=mb_tok.cls_token_id, eos_token_id=mb_tok.sep_token_id,
                                           attn_implementation="eager")
    model = transformers.ModernBertModel(config).eval()
    widen(model, 0.3)
    references["modernbert"] = embedder("modernbert", out, model, mb_tok, "cls",
                                        {"search_query": "search_query: ", "search_document": "search_document: "},
                                        "search_document")

    qw_tok = byte_bpe(data, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "$A <|endoftext|>",
                      "$A <|endoftext|> $B <|endoftext|>")
    qw_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=qw_tok, eos_token="<|endoftext|>",
                                                  pad_token="<|endoftext|>")
    config = transformers.Qwen3Config(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                      intermediate_size=96, max_position_embeddings=128,
                                      tie_word_embeddings=True, eos_token_id=qw_tok.eos_token_id,
                                      pad_token_id=qw_tok.pad_token_id, attn_implementation="eager")
    model = transformers.Qwen3Model(config).eval()
    widen(model, 0.3)
    instruct = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
    references["qwen3"] = embedder("qwen3", out, model, qw_tok, "lasttoken", {"query": instruct, "document": ""},
                                   None, padding_side="left")

    config = transformers.BertConfig(**common, max_position_embeddings=64, num_labels=1)
    model = transformers.BertForSequenceClassification(config).eval()
    references["bert-reranker"] = reranker("bert-reranker", out, model, wordpiece(data))
    config = transformers.XLMRobertaConfig(**common, max_position_embeddings=MAX_SEQ_LENGTH + 2, pad_token_id=1,
                                           bos_token_id=0, eos_token_id=2, type_vocab_size=1, num_labels=1)
    model = transformers.XLMRobertaForSequenceClassification(config).eval()
    references["xlm-roberta-reranker"] = reranker("xlm-roberta-reranker", out, model, unigram(data))

    config = transformers.BertConfig(**common, max_position_embeddings=64, num_labels=2)
    model = transformers.BertForSequenceClassification(config).eval()
    references["bert-classifier"] = classifier("bert-classifier", out, model, wordpiece(data),
                                               ["NEGATIVE", "POSITIVE"])
    config = transformers.XLMRobertaConfig(**common, max_position_embeddings=MAX_SEQ_LENGTH + 2, pad_token_id=1,
                                           bos_token_id=0, eos_token_id=2, type_vocab_size=1, num_labels=3)
    model = transformers.XLMRobertaForSequenceClassification(config).eval()
    references["xlm-roberta-classifier"] = classifier("xlm-roberta-classifier", out, model, unigram(data),
                                                      ["entailment", "neutral", "contradiction"])
    config = transformers.BertConfig(**common, max_position_embeddings=64)
    model = transformers.BertForMaskedLM(config).eval()
    references["bert-splade"] = splade("bert-splade", out, model, wordpiece(data))

    versions = {"sentence_transformers": sentence_transformers.__version__,
                "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "torch": torch.__version__, "seed": SEED}
    for name, record in references.items():
        record["generator"] = versions
        (out / name / "reference.json").write_text(json.dumps(record) + "\n")
        (out / name / "README.md").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
