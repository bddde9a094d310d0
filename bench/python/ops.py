"""Python PyTorch eager composites of radkit's fused ops, for bench/vsPython.ts.
  python3 ops.py maxsim-check FILE       einsum + max on FILE's image/text against radkit's scores (JSON)
  python3 ops.py maxsim-time --bi --bt --n --k --d --reps --threads [--form einsum|matmul]
        median ms of forward and forward+backward, peak extra RSS (einsum: the plain composite;
        matmul: one 2-D GEMM + amax, the faster way to write it in Python)
  python3 ops.py mq-check FILE / mq-time --reps --threads              memoryQuery at XProNet's size (dense composite)
  python3 ops.py sinkhorn-check FILE / sinkhorn-time --reps --threads  log-domain Sinkhorn at OTDRG's size (unrolled loop)
"""
import argparse
import math
import re
import time

import torch

from common import emit, median, read_safetensors, set_threads
from xpronet import memory_query


def max_similarity(image, text):
    """ops.md section 2 as a composite: all similarities [Bi, Bt, N, K], then the two masked maxima."""
    s = torch.einsum("ind,jkd->ijnk", image, text)
    return s.max(-1).values.mean(-1), s.max(-2).values.mean(-1)


def max_similarity_matmul(image, text):
    """The same scores as one 2-D GEMM over all images and texts ([Bi*N, Bt*K], no einsum permutes),
    viewed as [Bi, N, Bt, K], and amax (no indices) over the words and over the patches."""
    Bi, N, D = image.shape
    Bt, K, _ = text.shape
    s = torch.mm(image.reshape(Bi * N, D), text.reshape(Bt * K, D).t()).view(Bi, N, Bt, K)
    return s.amax(3).mean(1), s.amax(1).mean(-1)


FORMS = {"einsum": max_similarity, "matmul": max_similarity_matmul}


def sinkhorn(cost, eps, iters):
    """Uniform marginals, log domain, the order of radkit's loop (f then g), fixed iterations."""
    B, M, N = cost.shape
    K = -cost / eps
    la, lb = torch.full((B, M), -math.log(M)), torch.full((B, N), -math.log(N))
    f, g = torch.zeros(B, M), torch.zeros(B, N)
    for _ in range(iters):
        f = la - torch.logsumexp(g.unsqueeze(1) + K, 2)
        g = lb - torch.logsumexp(f.unsqueeze(2) + K, 1)
    plan = torch.exp(f.unsqueeze(2) + g.unsqueeze(1) + K)
    return plan, (plan * cost).sum((1, 2))


MQ = dict(B=16, L=98, S=280, D=512, k=15, heads=8)
SK = dict(B=64, M=196, N=56, D=512, iters=100, eps=0.1)


def status_kb(field):
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def timed(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["maxsim-check", "maxsim-time", "mq-check", "mq-time", "sinkhorn-check", "sinkhorn-time"])
    ap.add_argument("file", nargs="?")
    for k in ["bi", "bt", "n", "k", "d", "reps"]:
        ap.add_argument(f"--{k}", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--form", choices=sorted(FORMS), default="einsum")
    a = ap.parse_args()
    set_threads(a.threads)
    if a.mode == "maxsim-check":
        t = read_safetensors(a.file)
        diff = 0.0
        for form in FORMS.values():
            i2t, t2i = form(t["image"], t["text"])
            diff = max(diff, (i2t - t["imageToText"]).abs().max().item(), (t2i - t["textToImage"]).abs().max().item())
        emit({"maxAbsDiff": diff})
        return
    if a.mode == "mq-check":
        t = read_safetensors(a.file)
        r = memory_query(t["query"], t["keys"], t["values"], None, MQ["k"], MQ["heads"])
        emit({"maxAbsDiff": (r - t["response"]).abs().max().item()})
        return
    if a.mode == "sinkhorn-check":
        t = read_safetensors(a.file)
        _, d = sinkhorn(t["cost"], SK["eps"], SK["iters"])
        emit({"maxRelDiff": ((d - t["distance"]).abs() / t["distance"].abs()).max().item()})
        return
    if a.mode in ("mq-time", "sinkhorn-time"):
        torch.manual_seed(0)
        if a.mode == "mq-time":
            c = MQ
            inputs = [torch.randn(c["B"], c["L"], c["D"]), torch.randn(c["S"], c["D"]), torch.randn(c["S"], c["D"])]
            run = lambda *x: memory_query(*x, None, c["k"], c["heads"])
        else:
            c = SK
            x, y = torch.randn(c["B"], c["M"], c["D"]), torch.randn(c["B"], c["N"], c["D"])
            inputs = [torch.cdist(x, y) ** 2 / c["D"]]
            run = lambda cost: sinkhorn(cost, c["eps"], c["iters"])[1]
        for t in inputs:
            t.requires_grad_(True)
        base = status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

        def forward():
            with torch.no_grad():
                run(*inputs)

        def fwd_bwd():
            run(*inputs).sum().backward()

        forward_ms = timed(forward, a.reps)
        fwd_bwd_ms = timed(fwd_bwd, a.reps)
        emit({"forwardMs": forward_ms, "fwdBwdMs": fwd_bwd_ms, "peakExtraMb": (status_kb("VmHWM") - base) / 1024})
        return
    torch.manual_seed(1)
    image = torch.randn(a.bi, a.n, a.d, requires_grad=True)
    text = torch.randn(a.bt, a.k, a.d, requires_grad=True)
    ones = torch.ones(a.bi, a.bt)
    base = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

    form = FORMS[a.form]

    def forward():
        with torch.no_grad():
            form(image, text)

    def fwd_bwd():
        i2t, t2i = form(image, text)
        torch.autograd.backward([i2t, t2i], [ones, ones])

    forward_ms = timed(forward, a.reps)
    fwd_bwd_ms = timed(fwd_bwd, a.reps)
    emit({"forwardMs": forward_ms, "fwdBwdMs": fwd_bwd_ms, "peakExtraMb": (status_kb("VmHWM") - base) / 1024})


if __name__ == "__main__":
    main()
