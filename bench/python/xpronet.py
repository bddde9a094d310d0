"""XProNet (native/models/xpronet.cc) written a second time in Python PyTorch eager, module for module
with the same parameter names, so radkit's weights load by name. Prototype querying is the dense
composite (scores for every prototype, masked top-k, softmax, gathered values) that radkit's fused
ops.memoryQuery replaces.

Run by bench/vsPython.ts:
  python3 xpronet.py check  DIR   loss and gradient norm of one training step without dropout (JSON)
  python3 xpronet.py time   DIR --threads N --steps S   studies/s of training steps, peak RSS (JSON)
  python3 xpronet.py generate DIR --threads N --beams K --length L --reps R
        cached decoding of batch0 (oracle labels select the prototypes, EOS blocked so every study
        gets L tokens): the tokens and the median ms per call (JSON)
DIR holds config.json, weights.safetensors and batch0.safetensors, batch1..., written by radkit."""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import emit, median, peak_rss_mb, read_safetensors, set_threads

CLASSES = 14


def conv(i, o, k, s, p):
    return nn.Conv2d(i, o, k, stride=s, padding=p, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, i, o, s):
        super().__init__()
        self.conv1, self.bn1 = conv(i, o, 3, s, 1), nn.BatchNorm2d(o)
        self.conv2, self.bn2 = conv(o, o, 3, 1, 1), nn.BatchNorm2d(o)
        self.downsample = nn.Sequential(conv(i, o, 1, s, 0), nn.BatchNorm2d(o)) if s != 1 or i != o else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, widths, blocks):
        super().__init__()
        self.conv1, self.bn1 = conv(1, widths[0], 7, 2, 3), nn.BatchNorm2d(widths[0])
        i = widths[0]
        for s, b in enumerate(blocks):
            o = widths[min(s + 1, len(widths) - 1)]
            layers = []
            for j in range(b):
                layers.append(BasicBlock(i, o, 2 if j == 0 and s > 0 else 1))
                i = o
            setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
        self.stages = len(blocks)
        self.out_channels = i

    def forward(self, x):
        y = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for s in range(self.stages):
            y = getattr(self, f"layer{s + 1}")(y)
        return y


class MHA(nn.Module):
    def __init__(self, d, h, p):
        super().__init__()
        self.h, self.dh, self.p = h, d // h, p
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(d, d) for _ in range(4))

    def split(self, x):
        return x.view(x.size(0), x.size(1), self.h, self.dh).transpose(1, 2)

    def forward(self, q, kv, mask, k=None, v=None):
        k = self.split(self.wk(kv)) if k is None else k
        v = self.split(self.wv(kv)) if v is None else v
        qh = self.split(self.wq(q))
        s = torch.matmul(qh, k.transpose(-2, -1)).mul_(1.0 / math.sqrt(self.dh))
        if mask is not None:
            s = s.masked_fill(mask.logical_not(), float("-inf"))
        w = F.dropout(torch.softmax(s, -1), self.p, self.training)
        o = torch.matmul(w, v).transpose(1, 2).reshape(q.size(0), q.size(1), -1)
        return self.wo(o)


class FF(nn.Module):
    def __init__(self, d, f, p):
        super().__init__()
        self.w1, self.w2, self.p = nn.Linear(d, f), nn.Linear(f, d), p

    def forward(self, x):
        return self.w2(F.dropout(F.relu(self.w1(x)), self.p, self.training))


def norm(d):
    return nn.LayerNorm(d, eps=1e-6)


class EncoderLayer(nn.Module):
    def __init__(self, d, h, f, p):
        super().__init__()
        self.selfAttn, self.ff, self.norm1, self.norm2, self.p = MHA(d, h, p), FF(d, f, p), norm(d), norm(d), p

    def forward(self, x, mask):
        h = self.norm1(x)
        y = x + F.dropout(self.selfAttn(h, h, mask), self.p, self.training)
        return y + F.dropout(self.ff(self.norm2(y)), self.p, self.training)


class DecoderLayer(nn.Module):
    def __init__(self, d, h, f, p):
        super().__init__()
        self.selfAttn, self.crossAttn, self.ff = MHA(d, h, p), MHA(d, h, p), FF(d, f, p)
        self.norm1, self.norm2, self.norm3, self.p = norm(d), norm(d), norm(d), p

    def forward(self, x, self_mask, ck, cv, cross_mask):
        r = lambda x, y: x + F.dropout(y, self.p, self.training)
        h = self.norm1(x)
        y = r(x, self.selfAttn(h, h, self_mask))
        h = self.norm2(y)
        y = r(y, self.crossAttn(h, None, cross_mask, ck, cv))
        return r(y, self.ff(self.norm3(y)))


def sinusoidal(n, d):
    pos = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    t = torch.zeros(n, d, dtype=torch.float64)
    t[:, 0::2] = torch.sin(pos * div)
    t[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
    return t.float()


class Embeddings(nn.Module):
    def __init__(self, vocab, d, max_pos, p):
        super().__init__()
        self.tokens, self.d, self.p = nn.Embedding(vocab, d), d, p
        self.register_buffer("positionTable", sinusoidal(max_pos, d))

    def forward(self, ids):
        x = self.tokens(ids) * math.sqrt(self.d) + self.positionTable[: ids.size(1)].unsqueeze(0)
        return F.dropout(x, self.p, self.training)


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["dModel"]
        self.embed = Embeddings(c["vocabSize"], d, c["maxPositions"], c["dropout"])
        for i in range(c["decoderLayers"]):
            setattr(self, f"layer{i}", DecoderLayer(d, c["heads"], c["dFF"], c["dropout"]))
        self.n = c["decoderLayers"]
        self.finalNorm, self.out = norm(d), nn.Linear(d, c["vocabSize"])
        self.hook = None


class EncoderDecoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["dModel"]
        for i in range(c["encoderLayers"]):
            setattr(self, f"encoderLayer{i}", EncoderLayer(d, c["heads"], c["dFF"], c["dropout"]))
        self.n = c["encoderLayers"]
        self.encoderNorm = norm(d)
        self.decoder = Decoder(c)

    def forward(self, source, target):
        x = source  # no source positions, no source projection (XProNet's configuration)
        for i in range(self.n):
            x = getattr(self, f"encoderLayer{i}")(x, None)
        memory = self.encoderNorm(x)
        dec = self.decoder
        y = dec.hook(dec.embed(target))
        t = target.size(1)
        causal = torch.ones(t, t, dtype=torch.bool).tril().view(1, 1, t, t)
        for i in range(dec.n):
            layer = getattr(dec, f"layer{i}")
            ck, cv = layer.crossAttn.split(layer.crossAttn.wk(memory)), layer.crossAttn.split(layer.crossAttn.wv(memory))
            y = layer(y, causal, ck, cv, None)
        return dec.out(dec.finalNorm(y))


def memory_query(q, k, v, mask, topk, heads):
    """Dense multi-head top-k querying with softmax weights, written with batched matmuls: scores for
    every memory row [B, H, L, S], masked, top-k, softmax over the selected, and the response as a
    matmul of the scattered (dense, mostly zero) weights with the values. Rows with nothing eligible
    get a zero response (as radkit's)."""
    B, L, D = q.shape
    S = k.size(0)
    dh, dv = D // heads, v.size(1) // heads
    qh = q.view(B, L, heads, dh).transpose(1, 2)  # [B, H, L, dh]
    scores = torch.matmul(qh, k.view(S, heads, dh).permute(1, 2, 0)) / math.sqrt(dh)  # [B, H, L, S]
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not()[:, None, None, :], float("-inf"))
    vals, idx = scores.topk(min(topk, S), dim=-1)
    valid = torch.isfinite(vals)
    w = torch.softmax(vals.masked_fill(~valid, -1e4), -1) * valid
    dense = torch.zeros_like(scores).scatter(-1, idx, w)
    out = torch.matmul(dense, v.view(S, heads, dv).transpose(0, 1))  # [B, H, L, dv]
    return out.transpose(1, 2).reshape(B, L, heads * dv)


class XProNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["dModel"]
        self.c, self.d = c, d
        self.visual = ResNet(c["resnetWidths"], c["resnetBlocks"])
        cv = self.visual.out_channels
        self.visualProj = nn.Linear(cv, d)
        self.prototypes = nn.Parameter(torch.randn(CLASSES * c["prototypesPerClass"], cv + d) * 0.02)
        self.prototypeProj = nn.Linear(cv + d, d)
        self.queryProj, self.keyProj, self.valueProj, self.outProj = (nn.Linear(d, d) for _ in range(4))
        self.fuseImage, self.fuseText = nn.Linear(2 * d, d), nn.Linear(2 * d, d)
        self.classifier = nn.Linear(cv, CLASSES)
        self.transformer = EncoderDecoder(c)
        self.transformer.decoder.hook = self.fuse_words
        self.word_mask = None
        self.last_word_response = None

    def drop(self, x):
        return F.dropout(x, self.c["dropout"], self.training)

    def visual_tokens(self, images):
        B, V = images.shape[:2]
        f = self.visual(images.reshape(B * V, *images.shape[2:]))
        tokens = f.flatten(2).transpose(1, 2).reshape(B, -1, f.size(1))
        return self.drop(self.visualProj(tokens)), tokens.mean(1)

    def respond(self, x, mask):
        p = self.prototypeProj(self.prototypes)
        r = memory_query(self.queryProj(x), self.keyProj(p), self.valueProj(p), mask, self.c["topK"], self.c["heads"])
        return self.drop(self.outProj(r))

    def fuse_words(self, words):
        r = self.respond(words, self.word_mask)
        self.last_word_response = r
        return self.fuseText(torch.cat([words, r], -1))

    def contrastive(self, responses, token_mask, y):
        if token_mask is not None:
            m = token_mask.to(responses.dtype).unsqueeze(-1)
            pooled = (responses * m).sum(1) / m.sum(1).clamp_min(1)
        else:
            pooled = responses.mean(1)
        z = pooled / pooled.norm(2, -1, True).clamp_min(1e-12)
        sim = z @ z.t()
        common = (y @ y.t()).gt(0)
        hd = (y.unsqueeze(1) - y.unsqueeze(0)).abs().sum(-1)
        ht = (y.unsqueeze(1) + y.unsqueeze(0)).sum(-1).clamp_min(1)
        target = torch.pow(torch.tensor(self.c["theta"]), -(hd / ht))
        positive = (target - sim) * common
        negative = F.relu(sim - self.c["alpha"]) * common.logical_not()
        return (positive.sum() + negative.sum()) / float(y.size(0) ** 2)

    def loss(self, images, tokens, labels):
        c = self.c
        v, pooled = self.visual_tokens(images)
        y = labels.eq(1).to(v.dtype)
        mask = y.gt(0.5).repeat_interleave(c["prototypesPerClass"], 1)
        r_image = self.respond(v, mask)
        source = self.fuseImage(torch.cat([v, r_image], -1))
        self.word_mask = mask
        inp, target = tokens[:, :-1], tokens[:, 1:]
        logits = self.transformer(source, inp)
        r_text = self.last_word_response
        lengths = target.gt(0).sum(1, keepdim=True)
        valid = torch.arange(target.size(1)).unsqueeze(0).le(lengths)
        nll = -torch.log_softmax(logits, -1).gather(2, target.unsqueeze(-1)).squeeze(-1)
        total = (nll * valid).sum() / valid.sum().clamp_min(1)
        total = total + c["lambdaImage"] * self.contrastive(r_image, None, y)
        total = total + c["lambdaText"] * self.contrastive(r_text, valid[:, : r_text.size(1)], y)
        total = total + c["lambdaClass"] * F.binary_cross_entropy_with_logits(self.classifier(pooled), y)
        return total


@torch.no_grad()
def generate(m, images, labels, beams, length):
    """radkit's XProNet generate() with labelSource 'oracle', written as a careful eager loop: the
    encoder once, cross-attention keys/values once per layer, a self-attention key/value cache that
    grows one position per step (torch.cat), beams as rows b * beams + k reordered by index_select.
    EOS (id 0) is blocked at every step (radkit's minLength = maxLength), so no hypothesis finishes
    early and beam search is plain top-k over cumulative log-probabilities."""
    c = m.c
    v, _ = m.visual_tokens(images)
    y = labels.eq(1).to(v.dtype)
    mask = y.gt(0.5).repeat_interleave(c["prototypesPerClass"], 1)
    source = m.fuseImage(torch.cat([v, m.respond(v, mask)], -1))
    tr, dec = m.transformer, m.transformer.decoder
    x = source
    for i in range(tr.n):
        x = getattr(tr, f"encoderLayer{i}")(x, None)
    memory = tr.encoderNorm(x)
    B, rows = memory.size(0), memory.size(0) * beams
    memory = memory.repeat_interleave(beams, 0)
    m.word_mask = mask.repeat_interleave(beams, 0)
    layers = [getattr(dec, f"layer{i}") for i in range(dec.n)]
    cross = [(l.crossAttn.split(l.crossAttn.wk(memory)), l.crossAttn.split(l.crossAttn.wv(memory))) for l in layers]
    cache = [None] * len(layers)
    tok = torch.zeros(rows, dtype=torch.long)  # BOS = 0
    score = torch.zeros(B, beams, dtype=torch.float64)
    score[:, 1:] = float("-inf")  # the beams of a source start as one hypothesis
    out = torch.zeros(rows, 0, dtype=torch.long)
    scale = math.sqrt(dec.embed.d)
    for t in range(length):
        h = dec.embed.tokens(tok).unsqueeze(1) * scale + dec.embed.positionTable[t].view(1, 1, -1)
        h = dec.hook(h)
        for i, l in enumerate(layers):
            a = l.norm1(h)
            k, vv = l.selfAttn.split(l.selfAttn.wk(a)), l.selfAttn.split(l.selfAttn.wv(a))
            if cache[i] is not None:
                k, vv = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], vv], 2)
            cache[i] = (k, vv)
            h = h + l.selfAttn(a, None, None, k, vv)
            h = h + l.crossAttn(l.norm2(h), None, None, *cross[i])
            h = h + l.ff(l.norm3(h))
        logp = torch.log_softmax(dec.out(dec.finalNorm(h[:, 0])).double(), -1)  # scores in float64, as radkit's search
        logp[:, 0] = float("-inf")  # EOS blocked
        V = logp.size(1)
        if beams == 1:
            tok = logp.argmax(-1)
            score += logp.gather(1, tok.unsqueeze(1)).view(B, 1)
            out = torch.cat([out, tok.unsqueeze(1)], 1)
            continue
        total = (score.view(rows, 1) + logp).view(B, beams * V)
        score, flat = total.topk(beams, -1)
        parent = (flat // V + torch.arange(B).unsqueeze(1) * beams).view(-1)
        tok = (flat % V).view(-1)
        cache = [(k.index_select(0, parent), vv.index_select(0, parent)) for k, vv in cache]
        out = torch.cat([out.index_select(0, parent), tok.unsqueeze(1)], 1)
    m.word_mask = None
    best = score.argmax(-1) + torch.arange(B) * beams
    return out.index_select(0, best)


def build(folder, dropout=None):
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    if dropout is not None:
        c["dropout"] = dropout
    m = XProNet(c)
    weights = read_safetensors(os.path.join(folder, "weights.safetensors"))
    own = m.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    if missing or extra:
        raise SystemExit(f"weights do not match the twin: missing {missing[:8]}, extra {extra[:8]}")
    m.load_state_dict({k: v.to(own[k].dtype) for k, v in weights.items()})
    return m, c


def batches(folder):
    out, i = [], 0
    while os.path.exists(os.path.join(folder, f"batch{i}.safetensors")):
        b = read_safetensors(os.path.join(folder, f"batch{i}.safetensors"))
        out.append((b["images"], b["tokens"], b["labels"]))
        i += 1
    return out


def optimizer(m, c):
    visual = [p for n, p in m.named_parameters() if n.startswith("visual.")]
    rest = [p for n, p in m.named_parameters() if not n.startswith("visual.")]
    return torch.optim.Adam([{"params": visual, "lr": c["lr"]}, {"params": rest, "lr": c["lr"]}], lr=c["lr"])


PHASES = {}


def step(m, opt, b, clip):
    t = [time.perf_counter()]
    opt.zero_grad()
    loss = m.loss(*b)
    value = loss.item()
    t.append(time.perf_counter())
    loss.backward()
    t.append(time.perf_counter())
    norm = torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
    t.append(time.perf_counter())
    opt.step()
    t.append(time.perf_counter())
    for name, a, b in zip(["forward", "backward", "clip", "optimizer"], t, t[1:]):
        PHASES[name] = PHASES.get(name, 0.0) + (b - a)
    return value, float(norm)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["check", "time", "profile", "generate"])
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--beams", type=int, default=1)
    ap.add_argument("--length", type=int, default=60)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    set_threads(a.threads)
    torch.manual_seed(0)
    if a.mode == "check":
        m, c = build(a.dir, dropout=0.0)
        m.train()
        b = batches(a.dir)[0]
        loss = m.loss(*b)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(m.parameters(), float("inf"))
        emit({"loss": loss.item(), "gradNorm": float(grad_norm), "parameters": sum(p.numel() for p in m.parameters())})
        return
    if a.mode == "generate":
        m, c = build(a.dir)
        m.eval()
        images, _, labels = batches(a.dir)[0]
        tokens = generate(m, images, labels, a.beams, a.length)  # warm-up, and the tokens to compare
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            generate(m, images, labels, a.beams, a.length)
            times.append(1000 * (time.perf_counter() - t0))
        emit({"side": "python", "ms": median(times), "tokens": tokens.tolist(), "peakRssMb": peak_rss_mb(), "threads": torch.get_num_threads()})
        return
    m, c = build(a.dir)
    m.train()
    opt = optimizer(m, c)
    bs = batches(a.dir)
    step(m, opt, bs[0], 1.0)  # warm-up
    if a.mode == "profile":
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(a.steps):
                step(m, opt, bs[(i + 1) % len(bs)], 1.0)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
        return
    PHASES.clear()
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(m, opt, bs[(i + 1) % len(bs)], 1.0)
    seconds = time.perf_counter() - t0
    studies = a.steps * bs[0][0].size(0)
    phases = {f"ms.{k}": 1000 * v / a.steps for k, v in PHASES.items()}
    emit({"side": "python", "studiesPerSecond": studies / seconds, "secondsPerStep": seconds / a.steps, "peakRssMb": peak_rss_mb(), "threads": torch.get_num_threads(), **phases})


if __name__ == "__main__":
    main()
