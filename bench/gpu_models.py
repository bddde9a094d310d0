"""Eager Python PyTorch side of bench/gpu_models.ts: XProNet's training step and beam-3 generation on one
device, timed like radkit's. The model is radkit's Python twin (bench/python/xpronet.py: same modules,
same parameter names), built with torch's default device set to the bench device so that every tensor
it makes lands there; weights, configuration and batches come from DIR, written by gpu_models.ts
(config.json, weights.safetensors, batch0.safetensors, ...).

  python3 bench/gpu_models.py check DIR --device cuda             loss and gradient norm of one step without dropout (JSON)
  python3 bench/gpu_models.py time  DIR --device cuda --precision bfloat16 --steps 20 --gen-batches 3
        training images/s and generation studies/s, peak GPU memory (JSON on the last line)

--precision bfloat16|float16 runs the forward pass under torch.autocast (float32 master weights, as
radkit's precision option); float16 adds torch.amp.GradScaler. On the CPU (--device cpu) the same
code runs for a smoke check; only CUDA figures are reported."""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))
import xpronet as twin  # noqa: E402  (bench/python/xpronet.py)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device, precision):
    if precision == "float32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bfloat16" else torch.float16)


def load(folder, device, dropout=None):
    torch.set_default_device(device)
    m, c = twin.build(folder, dropout=dropout)
    m.to(device)
    bs = [tuple(t.to(device) for t in b) for b in twin.batches(folder)]
    # radkit hands uint8 or float images; the twin takes float [0, 1].
    bs = [(im.float() / 255 if im.dtype == torch.uint8 else im.float(), tok, lab) for im, tok, lab in bs]
    return m, c, bs


@torch.no_grad()
def beam_search(m, c, images, beams=3, max_len=60, no_repeat=3):
    """Beam search as radkit's XProNet decodes (predicted labels, beam 3, no repeated trigram, length
    by mean log-probability as radkit's default); the decoder reruns the whole prefix each step (the
    public XProNet code's decoding)."""
    m.eval()
    v, pooled = m.visual_tokens(images)
    y = torch.sigmoid(m.classifier(pooled)).gt(0.5).to(v.dtype)
    mask = y.gt(0.5).repeat_interleave(c["prototypesPerClass"], 1)
    source = m.fuseImage(torch.cat([v, m.respond(v, mask)], -1))
    tr = m.transformer
    x = source
    for i in range(tr.n):
        x = getattr(tr, f"encoderLayer{i}")(x, None)
    memory = tr.encoderNorm(x)
    B, K = images.size(0), beams
    memory = memory.repeat_interleave(K, 0)
    m.word_mask = mask.repeat_interleave(K, 0)
    seqs = torch.zeros(B * K, 1, dtype=torch.long)  # BOS = 0
    scores = torch.zeros(B, K)
    scores[:, 1:] = -math.inf
    done = torch.zeros(B * K, dtype=torch.bool)
    dec = tr.decoder
    for t in range(max_len):
        y_ = dec.hook(dec.embed(seqs))
        n = seqs.size(1)
        causal = torch.ones(n, n, dtype=torch.bool).tril().view(1, 1, n, n)
        for i in range(dec.n):
            layer = getattr(dec, f"layer{i}")
            ck, cv = layer.crossAttn.split(layer.crossAttn.wk(memory)), layer.crossAttn.split(layer.crossAttn.wv(memory))
            y_ = layer(y_, causal, ck, cv, None)
        logp = torch.log_softmax(dec.out(dec.finalNorm(y_[:, -1])).float(), -1)  # [B*K, V]
        if no_repeat and n >= no_repeat:
            # Ban tokens that would repeat an n-gram already in the sequence (host loop, as simple implementations do).
            prev = seqs[:, -(no_repeat - 1):].tolist()
            rows = seqs.tolist()
            for r in range(B * K):
                for s in range(len(rows[r]) - no_repeat + 1):
                    if rows[r][s : s + no_repeat - 1] == prev[r]:
                        logp[r, rows[r][s + no_repeat - 1]] = -math.inf
        logp[done] = -math.inf
        logp[done, 0] = 0  # a finished beam only extends with EOS/PAD at no cost
        cand = (scores.view(B * K, 1) + logp).view(B, -1)
        top, idx = cand.topk(K, -1)
        origin = idx // logp.size(1) + torch.arange(B).unsqueeze(1) * K
        token = idx % logp.size(1)
        seqs = torch.cat([seqs[origin.view(-1)], token.view(-1, 1)], 1)
        done = done[origin.view(-1)] | token.view(-1).eq(0)
        scores = top
        if bool(done.all()):
            break
    lengths = seqs[:, 1:].ne(0).sum(1).clamp_min(1).view(B, K).float()
    best = (scores / lengths).argmax(1)
    return seqs.view(B, K, -1)[torch.arange(B), best, 1:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["check", "time"])
    ap.add_argument("dir")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--gen-batches", type=int, default=3)
    ap.add_argument("--beams", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=60)
    a = ap.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda":
        # Same arithmetic as radkit's LibTorch defaults: no TF32 matrix products; cuDNN picks its kernels.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(0)
    if a.mode == "check":
        torch.backends.cudnn.allow_tf32 = False
        m, c, bs = load(a.dir, device, dropout=0.0)
        m.train()
        loss = m.loss(*bs[0])
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), float("inf"))
        print(json.dumps({"loss": loss.item(), "gradNorm": float(norm)}))
        return
    m, c, bs = load(a.dir, device)
    opt = twin.optimizer(m, c)
    scaler = torch.amp.GradScaler(device.type) if a.precision == "float16" else None

    def step(b):
        opt.zero_grad(set_to_none=True)
        with autocast(device, a.precision):
            loss = m.loss(*b)
        if scaler:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
        return loss

    m.train()
    for i in range(a.warmup):
        step(bs[i % len(bs)])
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for i in range(a.steps):
        last = step(bs[i % len(bs)])
    last.item()
    sync(device)
    train_s = (time.perf_counter() - t0) / a.steps
    train_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    images = bs[0][0]
    images_per_step = images.size(0) * images.size(1)

    with autocast(device, a.precision):
        beam_search(m, c, images, a.beams, a.max_length)  # warm-up
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        for i in range(a.gen_batches):
            beam_search(m, c, bs[i % len(bs)][0], a.beams, a.max_length)
        sync(device)
    gen_s = (time.perf_counter() - t0) / a.gen_batches
    gen_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    print(json.dumps({
        "side": "pytorch-eager", "torch": torch.__version__, "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "precision": a.precision, "batch": images.size(0), "views": images.size(1), "size": images.size(-1),
        "trainStepMs": train_s * 1e3, "trainImagesPerSecond": images_per_step / train_s, "trainPeakBytes": train_peak,
        "generateBatchMs": gen_s * 1e3, "generateStudiesPerSecond": images.size(0) / gen_s, "generatePeakBytes": gen_peak,
        "steps": a.steps, "genBatches": a.gen_batches, "beams": a.beams,
    }))


if __name__ == "__main__":
    main()
