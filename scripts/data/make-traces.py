#!/usr/bin/env python3
"""Writes the small synthetic traces scripts/trace-replay.rhai replays, one per format llmbench
reads: Mooncake-style JSONL, BurstGPT CSV and plain JSONL. Everything is made up here from a
fixed seed (nothing is copied from a real trace), so rerunning this script rewrites the same
bytes:  python3 scripts/data/make-traces.py
"""

import json
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCK = 512  # Mooncake's tokens per hash id
rng = random.Random(14)


def mooncake(n=40):
    """Arrivals 5-60 ms apart; four shared system prompts (hash ids 0-3, one or two blocks
    each) followed by blocks of the request's own, so prefixes repeat as in a chat service."""
    lines, t, next_id = [], 1_000, 100
    shared = {0: [0], 1: [1], 2: [2, 3], 3: [4, 5]}
    for _ in range(n):
        t += rng.randint(5, 60)
        prefix = shared[rng.randrange(4)]
        own = rng.randint(0, 2)
        hash_ids = prefix + list(range(next_id, next_id + own))
        next_id += own
        full = len(hash_ids) - 1
        input_length = full * BLOCK + rng.randint(1, BLOCK)  # the last block may be partial
        lines.append({
            "timestamp": t,
            "input_length": input_length,
            "output_length": rng.randint(2, 24),
            "hash_ids": hash_ids,
        })
    assert all(math.ceil(l["input_length"] / BLOCK) == len(l["hash_ids"]) for l in lines)
    return "".join(json.dumps(l) + "\n" for l in lines)


def burstgpt(n=40):
    rows, t = ["Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"], 3600.0
    for _ in range(n):
        t += rng.randint(5, 60) / 1000
        req, resp = rng.randint(16, 600), rng.randint(1, 24)
        model = rng.choice(["ChatGPT", "GPT-4"])
        rows.append(f"{t:.3f},{model},{req},{resp},{req + resp},Conversation log")
    return "\n".join(rows) + "\n"


def plain(n=20):
    lines, t = [], 0
    for i in range(n):
        t += rng.randint(10, 80)
        if i % 2:
            line = {"timestamp": t, "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": f"Question {i}: name a colour."}]}
        else:
            line = {"timestamp": t, "prompt": f"Question {i}: count to {rng.randint(3, 9)}."}
        line["max_tokens"] = rng.randint(4, 16)
        lines.append(line)
    return "".join(json.dumps(l) + "\n" for l in lines)


for name, text in [("mooncake-trace.jsonl", mooncake()), ("burstgpt-trace.csv", burstgpt()),
                   ("plain-trace.jsonl", plain())]:
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)
    print("wrote", os.path.join("scripts/data", name))
