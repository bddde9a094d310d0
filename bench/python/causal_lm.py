"""GPT-NeoX (Hugging Face layout) in Python PyTorch eager, for bench/causal_lm.ts: the folder radkit's
CausalLM.save writes (config.json, model.safetensors in float32), greedy generation with a key/value
cache, batch rows of equal length (no padding).
  python3 causal_lm.py check DIR FILE          logits of FILE's prompt and greedy tokens vs radkit's (JSON)
  python3 causal_lm.py time DIR FILE --new N --threads T   greedy generation of FILE's prompt: tokens/s, ms/step, peak RSS growth
"""
import argparse
import json
import math
import os
import re
import time

import torch
import torch.nn.functional as F

from common import emit, read_safetensors, set_threads


class NeoX:
    def __init__(self, folder):
        with open(os.path.join(folder, "config.json")) as f:
            c = json.load(f)
        if c.get("model_type") != "gpt_neox":
            raise SystemExit(f"{folder}: model_type {c.get('model_type')} is not gpt_neox")
        w = read_safetensors(os.path.join(folder, "model.safetensors"))
        self.w = {k: v.float() for k, v in w.items()}
        self.H = c["num_attention_heads"]
        self.d = c["hidden_size"]
        self.dh = self.d // self.H
        self.rot = int(self.dh * c.get("rotary_pct", 0.25))
        self.eps = c.get("layer_norm_eps", 1e-5)
        self.parallel = c.get("use_parallel_residual", True)
        self.layers = c["num_hidden_layers"]
        base = c.get("rotary_emb_base", 10000)
        self.inv_freq = 1.0 / (base ** (torch.arange(0, self.rot, 2).float() / self.rot))
        self.out = self.w.get("embed_out.weight", self.w["gpt_neox.embed_in.weight"])

    def p(self, name):
        return self.w[name]

    def ln(self, x, name):
        return F.layer_norm(x, (self.d,), self.p(name + ".weight"), self.p(name + ".bias"), self.eps)

    def lin(self, x, name):
        return F.linear(x, self.p(name + ".weight"), self.p(name + ".bias"))

    def rope(self, x, pos):
        f = torch.outer(pos.float(), self.inv_freq)
        emb = torch.cat([f, f], -1)
        cos, sin = emb.cos(), emb.sin()
        r, rest = x[..., : self.rot], x[..., self.rot :]
        h = self.rot // 2
        rotated = torch.cat([-r[..., h:], r[..., :h]], -1)
        return torch.cat([r * cos + rotated * sin, rest], -1)

    def forward(self, ids, cache, start):
        """ids [B, T] at positions start.. ; cache: per layer [k, v] ([B, H, t, dh]) or None entries; returns last logits [B, V]."""
        B, T = ids.shape
        x = F.embedding(ids, self.p("gpt_neox.embed_in.weight"))
        pos = torch.arange(start, start + T)
        for i in range(self.layers):
            n = f"gpt_neox.layers.{i}"
            h = self.ln(x, n + ".input_layernorm")
            qkv = self.lin(h, n + ".attention.query_key_value").view(B, T, self.H, 3 * self.dh).transpose(1, 2)
            q, k, v = qkv[..., : self.dh], qkv[..., self.dh : 2 * self.dh], qkv[..., 2 * self.dh :]
            q, k = self.rope(q, pos), self.rope(k, pos)
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], 2)
                v = torch.cat([cache[i][1], v], 2)
            cache[i] = [k, v]
            s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.dh)
            if T > 1:
                s = s.masked_fill(torch.ones(T, k.size(2), dtype=torch.bool).tril(k.size(2) - T).logical_not(), float("-inf"))
            a = torch.matmul(torch.softmax(s, -1), v).transpose(1, 2).reshape(B, T, self.d)
            a = self.lin(a, n + ".attention.dense")
            mlp = lambda y: self.lin(F.gelu(self.lin(y, n + ".mlp.dense_h_to_4h")), n + ".mlp.dense_4h_to_h")
            if self.parallel:
                x = x + a + mlp(self.ln(x, n + ".post_attention_layernorm"))
            else:
                x = x + a
                x = x + mlp(self.ln(x, n + ".post_attention_layernorm"))
        x = self.ln(x, "gpt_neox.final_layer_norm")
        return F.linear(x, self.out)

    @torch.no_grad()
    def generate(self, prompt, new):
        cache = [None] * self.layers
        logits = self.forward(prompt, cache, 0)[:, -1]
        out = []
        pos = prompt.size(1)
        for _ in range(new):
            nxt = logits.argmax(-1)
            out.append(nxt)
            if len(out) == new:
                break
            logits = self.forward(nxt.unsqueeze(1), cache, pos)[:, -1]
            pos += 1
        return torch.stack(out, 1)


def status_kb(field):
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["check", "time"])
    ap.add_argument("dir")
    ap.add_argument("file", nargs="?")
    ap.add_argument("--new", type=int)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    set_threads(a.threads)
    m = NeoX(a.dir)
    if a.mode == "check":
        t = read_safetensors(a.file)
        with torch.no_grad():
            logits = m.forward(t["prompt"], [None] * m.layers, 0)
        tokens = m.generate(t["prompt"], t["tokens"].size(1))
        emit({"maxAbsLogitDiff": (logits - t["logits"]).abs().max().item(), "sameTokens": bool(torch.equal(tokens, t["tokens"]))})
        return
    prompt = read_safetensors(a.file)["prompt"]
    m.generate(prompt, 2)  # warm-up
    base = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    m.generate(prompt, a.new)
    s = time.perf_counter() - t0
    emit({"tokensPerSecond": prompt.size(0) * a.new / s, "msPerStep": 1000 * s / a.new, "peakRssGrowthMB": (status_kb("VmHWM") - base) / 1024})


if __name__ == "__main__":
    main()
