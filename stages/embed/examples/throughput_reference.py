"""sentence-transformers counterpart of `cargo run --release --example throughput`.

    python examples/throughput_reference.py [MODEL_DIR] [REPEATS] [BATCH_SIZE]

Same texts (the 54 captions of tests/fixtures/minilm_reference.json, repeated), same batch size, CPU.
"""

import json
import os
import sys
import time

import torch
from sentence_transformers import SentenceTransformer, models

here = os.path.dirname(os.path.abspath(__file__))
model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/all-MiniLM-L6-v2"
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 20
batch_size = int(sys.argv[3]) if len(sys.argv) > 3 else 32

with open(os.path.join(here, "..", "tests", "fixtures", "minilm_reference.json"), encoding="utf-8") as f:
    captions = json.load(f)["texts"]
texts = captions * repeats

if os.path.isdir(os.path.join(model_dir, "1_Pooling")):
    model = SentenceTransformer(model_dir, device="cpu")
else:
    # The wheel's folder has no 1_Pooling/: build the same pipeline (mean pooling, L2 normalisation) by hand.
    # Same truncation as a full sentence-transformers folder (and as oassl): sentence_bert_config.json's limit.
    with open(os.path.join(model_dir, "sentence_bert_config.json"), encoding="utf-8") as f:
        max_seq_length = json.load(f)["max_seq_length"]
    word = models.Transformer(model_dir, max_seq_length=max_seq_length)
    pool = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[word, pool, models.Normalize()], device="cpu")
model.encode(captions, batch_size=batch_size)  # warm-up
start = time.perf_counter()
model.encode(texts, batch_size=batch_size)
secs = time.perf_counter() - start
print(
    f"sentence-transformers: {len(texts)} texts, batch {batch_size}, {torch.get_num_threads()} threads, "
    f"{secs:.2f} s, {len(texts) / secs:.1f} sentences/s"
)
