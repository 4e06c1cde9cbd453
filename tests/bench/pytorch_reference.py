#!/usr/bin/env python3
"""PyTorch reference for `condgen-bench`: the same models, losses and optimiser
as condgen's, written the way a PyTorch user would, timed the same way.

Models (shapes as condgen's, see src/model/):
  mlp_cvae   784⊕50 → 144 ReLU → (mean, logvar) 20; 20⊕50 → 144 ReLU → 784 logits
  mlp_cgan   G: 64⊕50 → 256 → 512 → 784 tanh; D: 784⊕50 → 512 → 256 → 1 (ReLU)
  conv_cvae  the sign study's conv CVAE (ConvCvaeConfig::default()), condition 24

Initialisation follows tch's defaults, not PyTorch's: linear / conv weights
kaiming-uniform with the ReLU gain (bound sqrt(6 / fan_in), fan_in = dims[1]·k·k),
linear bias U(±1/sqrt(in)), conv bias 0, batch-norm weight U(0, 1), bias 0.
Optimiser: torch.optim.Adam(lr=1e-3) with its defaults (betas 0.9, 0.999).
Losses: BCE-with-logits summed / batch + closed-form KL (CVAEs), BCE-with-logits
batch means (GAN, non-saturating generator loss), as src/loss.rs.

A step is exactly what condgen::train::cvae_step / gan_step do, including
reading the loss values back as Python floats.

Usage:
  pytorch_reference.py --threads 2 --repeats 5 --steps 100 --warmup 20 \
      --models mlp_cvae:128,mlp_cgan:32,conv_cvae:64:3:2 --sgemm-size 1024 --json

With --serve, runs as a worker for condgen's bench, which alternates condgen and
PyTorch repeats so both see the same machine load. One JSON request per stdin
line, one JSON response per stdout line ({"ok": true, ...} or {"ok": false, "error"}):
  {"cmd": "hello"}                                  → versions and threads
  {"cmd": "prepare", "model": m, "batch": b, "warmup": w}  → build, warm up
  {"cmd": "repeat", "steps": n}                     → {"seconds_per_step": s}
  {"cmd": "sgemm", "size": n}                       → {"torch_gflops": g, "numpy_gflops": g | null}
  {"cmd": "quit"}

With --json, prints one JSON object on stdout (progress goes to stderr):
  {"torch_version": ..., "numpy_version": ..., "threads": ...,
   "models": {"mlp_cvae:128": {"model", "batch_size", "step_seconds": [per repeat],
              "median_step_seconds", "images_per_second", "steps_per_second"}, ...},
   "sgemm": {"size", "torch_gflops": [...], "torch_median_gflops",
             "numpy_gflops": [...] | null, "numpy_median_gflops": float | null}}
or {"error": "..."} (exit status 2) when torch is missing.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (torch.set_num_threads)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats; medians are over these")
    p.add_argument("--steps", type=int, default=100, help="training steps per repeat (MLP models)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps before the first repeat (MLP models)")
    p.add_argument("--conv-steps", type=int, default=3, help="training steps per repeat (conv CVAE)")
    p.add_argument("--conv-warmup", type=int, default=2, help="untimed steps (conv CVAE)")
    p.add_argument("--models", default="mlp_cvae:128,mlp_cgan:32,conv_cvae:64,conv_cvae:256",
                   help="comma-separated model:batch[:steps[:warmup]] cases (empty: none)")
    p.add_argument("--sgemm-size", type=int, default=1024, help="side of the square SGEMM (0: skip)")
    p.add_argument("--pool", type=int, default=8, help="distinct random batches cycled through")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--serve", action="store_true", help="worker mode: JSON requests on stdin (see above)")
    return p.parse_args()


ARGS = parse_args()
# BLAS pools read these at load time, so set them before numpy / torch load.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
# torch warns when numpy is absent; numpy is optional here.
warnings.filterwarnings("ignore")

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "no reference"
    print(json.dumps({"error": f"torch is not importable with {sys.executable}: {e}"}))
    sys.exit(2)

try:
    import numpy
except Exception:  # noqa: BLE001
    numpy = None


def log(msg):
    print(f"[pytorch] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- init as tch


def tch_init_(module):
    """tch's default initialisation (see tch/src/nn/{linear,conv,conv_transpose,batch_norm}.rs)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            # kaiming-uniform, fan_in, ReLU gain: bound sqrt(6 / fan_in); bias U(±1/sqrt(in))
            nn.init.kaiming_uniform_(m.weight, a=0.0, mode="fan_in", nonlinearity="relu")
            bound = 1.0 / math.sqrt(m.in_features)
            nn.init.uniform_(m.bias, -bound, bound)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            # fan_in from dims[1]·k·k for both (PyTorch computes it the same way)
            nn.init.kaiming_uniform_(m.weight, a=0.0, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.0, 1.0)
            nn.init.zeros_(m.bias)
    return module


# ---------------------------------------------------------------- models


class MlpCvae(nn.Module):
    def __init__(self, cond, hidden=144, latent=20):
        super().__init__()
        self.enc_hidden = nn.Linear(784 + cond, hidden)
        self.enc_mean = nn.Linear(hidden, latent)
        self.enc_logvar = nn.Linear(hidden, latent)
        self.dec_hidden = nn.Linear(latent + cond, hidden)
        self.dec_out = nn.Linear(hidden, 784)

    def forward(self, x, c):
        b = x.shape[0]
        h = F.relu(self.enc_hidden(torch.cat([x.view(b, 784), c], 1)))
        mean, logvar = self.enc_mean(h), self.enc_logvar(h)
        z = mean + (logvar * 0.5).exp() * torch.randn_like(mean)
        logits = self.dec_out(F.relu(self.dec_hidden(torch.cat([z, c], 1)))).view(b, 1, 28, 28)
        return logits, mean, logvar


class ConvCvae(nn.Module):
    """ConvCvaeConfig::default(): encoder [128, 64, 128], latent 512, dense 512, decoder [128, 64]."""

    def __init__(self, cond, enc=(128, 64, 128), latent=512, dense=512, dec=(128, 64)):
        super().__init__()
        convs, bns, ch = [], [], 1 + cond
        for f in enc:
            convs.append(nn.Conv2d(ch, f, 3, stride=2))
            bns.append(nn.BatchNorm2d(f))
            ch = f
        self.convs, self.bns = nn.ModuleList(convs), nn.ModuleList(bns)
        self.enc_out = nn.Linear(ch * 2 * 2, 2 * latent)
        self.dec_in = nn.Linear(latent + cond, 7 * 7 * dense)
        self.up1 = nn.ConvTranspose2d(dense, dec[0], 3, stride=2, padding=1, output_padding=1)
        self.bn1 = nn.BatchNorm2d(dec[0])
        self.up2 = nn.ConvTranspose2d(dec[0], dec[1], 3, stride=2, padding=1, output_padding=1)
        self.out = nn.ConvTranspose2d(dec[1], 1, 3, stride=1, padding=1)
        self.dense = dense

    def forward(self, x, c):
        b, k = c.shape
        h = torch.cat([x, c.view(b, k, 1, 1).expand(b, k, 28, 28)], 1)
        for conv, bn in zip(self.convs, self.bns):
            h = bn(F.relu(conv(h)))
        mean, logvar = self.enc_out(h.flatten(1)).chunk(2, 1)
        z = mean + (logvar * 0.5).exp() * torch.randn_like(mean)
        d = self.dec_in(torch.cat([z, c], 1)).view(b, self.dense, 7, 7)
        d = self.bn1(F.relu(self.up1(d)))
        return self.out(F.relu(self.up2(d))), mean, logvar


class Generator(nn.Module):
    def __init__(self, cond, noise=64, hidden=(256, 512)):
        super().__init__()
        self.noise = noise
        self.fc1 = nn.Linear(noise + cond, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.out = nn.Linear(hidden[1], 784)

    def forward(self, z, c):
        h = F.relu(self.fc2(F.relu(self.fc1(torch.cat([z, c], 1)))))
        return torch.tanh(self.out(h)).view(z.shape[0], 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self, cond, hidden=(512, 256)):
        super().__init__()
        self.fc1 = nn.Linear(784 + cond, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.out = nn.Linear(hidden[1], 1)

    def forward(self, x, c):
        b = x.shape[0]
        h = F.relu(self.fc2(F.relu(self.fc1(torch.cat([x.view(b, 784), c], 1)))))
        return self.out(h).view(b)


# ---------------------------------------------------------------- steps


def cvae_step(model, opt, x, c):
    """condgen::train::cvae_step with kl_weight 1."""
    b = x.shape[0]
    logits, mean, logvar = model(x, c)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / b
    kl = (logvar.exp() + mean.square() - logvar - 1.0).sum() * 0.5 / b
    total = bce + kl * 1.0
    opt.zero_grad()
    total.backward()
    opt.step()
    return total.item(), bce.item(), kl.item()


def gan_step(gen, disc, opt_g, opt_d, x, c):
    """condgen::train::gan_step with the BCE loss and a generator step."""
    b = x.shape[0]
    real = x * 2.0 - 1.0
    fake = gen(torch.randn(b, gen.noise), c)
    real_out = disc(real, c)
    fake_out = disc(fake.detach(), c)
    d_loss = F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out)) + \
        F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    with torch.no_grad():
        d_real, d_fake = real_out.sigmoid().mean().item(), fake_out.sigmoid().mean().item()
    out = disc(fake, c)
    g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item(), d_real, d_fake


def batches(n, b, classes, style_bit):
    """Random batches as condgen's Batcher builds them: uint8 pixels → f32 / 255, one-hot (+ style bit)."""
    out = []
    for _ in range(n):
        x = torch.randint(0, 256, (b, 1, 28, 28), dtype=torch.uint8).to(torch.float32) / 255.0
        c = F.one_hot(torch.randint(0, classes, (b,)), classes).to(torch.float32)
        if style_bit:
            c = torch.cat([c, torch.randint(0, 2, (b, 1)).to(torch.float32)], 1)
        out.append((x, c))
    return out


def make_case(model, b):
    """A closure doing one training step on the next batch of a pool."""
    if model in ("mlp_cvae", "conv_cvae"):
        cond, classes, style = (50, 49, True) if model == "mlp_cvae" else (24, 24, False)
        net = tch_init_(MlpCvae(cond) if model == "mlp_cvae" else ConvCvae(cond))
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        pool = batches(ARGS.pool, b, classes, style)

        def step(i):
            x, c = pool[i % len(pool)]
            cvae_step(net, opt, x, c)
        return step
    if model == "mlp_cgan":
        gen, disc = tch_init_(Generator(50)), tch_init_(Discriminator(50))
        opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3)
        opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
        pool = batches(ARGS.pool, b, 49, True)

        def step(i):
            x, c = pool[i % len(pool)]
            gan_step(gen, disc, opt_g, opt_d, x, c)
        return step
    raise SystemExit(f"unknown model `{model}` (mlp_cvae, mlp_cgan, conv_cvae)")


def time_steps(step, warmup, repeats, steps):
    """Seconds per step, one figure per repeat, after `warmup` untimed steps."""
    i = 0
    for _ in range(warmup):
        step(i)
        i += 1
    per_step = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step(i)
            i += 1
        per_step.append((time.perf_counter() - t0) / steps)
    return per_step


class Sgemm:
    """n×n f32 matmul (2n³ FLOP), torch and numpy; about 2 GFLOP per repeat."""

    def __init__(self, n):
        self.n, self.flop = n, 2.0 * n ** 3
        self.calls = max(1, int(2e9 / self.flop))
        self.torch = (torch.randn(n, n), torch.randn(n, n))
        self.numpy = None
        if numpy is not None:
            self.numpy = tuple(numpy.random.rand(n, n).astype(numpy.float32) for _ in range(2))
        self.repeat()  # warm-up: BLAS buffers, threads

    def _rate(self, mm, a, b):
        t0 = time.perf_counter()
        for _ in range(self.calls):
            mm(a, b)
        return self.flop * self.calls / (time.perf_counter() - t0) / 1e9

    def repeat(self):
        """(torch GFLOP/s, numpy GFLOP/s or None)."""
        t = self._rate(torch.matmul, *self.torch)
        return t, None if self.numpy is None else self._rate(numpy.matmul, *self.numpy)


def sgemm(n, repeats):
    bench = Sgemm(n)
    rates = [bench.repeat() for _ in range(repeats)]
    out = {"size": n, "torch_gflops": [t for t, _ in rates]}
    out["torch_median_gflops"] = statistics.median(out["torch_gflops"])
    if numpy is not None:
        out["numpy_gflops"] = [g for _, g in rates]
        out["numpy_median_gflops"] = statistics.median(out["numpy_gflops"])
    else:
        out["numpy_gflops"] = None
        out["numpy_median_gflops"] = None
    return out


def hello():
    return {
        "torch_version": torch.__version__,
        "numpy_version": None if numpy is None else numpy.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
    }


def serve():
    """Worker mode: one request per stdin line, one response per stdout line."""
    step, i, sgemms = None, 0, {}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            cmd = req["cmd"]
            if cmd == "quit":
                break
            if cmd == "hello":
                resp = hello()
            elif cmd == "prepare":
                step = None  # free the previous case first
                torch.manual_seed(ARGS.seed)
                step, i = make_case(req["model"], int(req["batch"])), 0
                for _ in range(int(req.get("warmup", 0))):
                    step(i)
                    i += 1
                resp = {}
            elif cmd == "repeat":
                if step is None:
                    raise RuntimeError("repeat before prepare")
                n = max(1, int(req["steps"]))
                t0 = time.perf_counter()
                for _ in range(n):
                    step(i)
                    i += 1
                resp = {"seconds_per_step": (time.perf_counter() - t0) / n}
            elif cmd == "sgemm":
                n = int(req["size"])
                if n not in sgemms:
                    sgemms[n] = Sgemm(n)
                t, g = sgemms[n].repeat()
                resp = {"torch_gflops": t, "numpy_gflops": g}
            else:
                raise ValueError(f"unknown command `{cmd}`")
            resp["ok"] = True
        except Exception as e:  # noqa: BLE001 - reported to the caller
            resp = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(resp), flush=True)


def main():
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(ARGS.seed)
    if ARGS.serve:
        serve()
        return
    result = dict(hello(), models={}, sgemm=None)
    for case in filter(None, ARGS.models.split(",")):
        # model[:batch[:steps[:warmup]]]; steps and warm-up default by model family
        fields = case.split(":")
        model = fields[0]
        b = int(fields[1]) if len(fields) > 1 else 128
        conv = model.startswith("conv")
        warmup, steps = (ARGS.conv_warmup, ARGS.conv_steps) if conv else (ARGS.warmup, ARGS.steps)
        if len(fields) > 2:
            steps = int(fields[2])
        if len(fields) > 3:
            warmup = int(fields[3])
        per_step = time_steps(make_case(model, b), warmup, ARGS.repeats, max(1, steps))
        med = statistics.median(per_step)
        result["models"][f"{model}:{b}"] = {
            "model": model,
            "batch_size": b,
            "step_seconds": per_step,
            "median_step_seconds": med,
            "images_per_second": b / med,
            "steps_per_second": 1.0 / med,
        }
        log(f"{model} batch {b}: {med * 1e3:.2f} ms/step, {b / med:,.0f} images/s")
    if ARGS.sgemm_size > 0:
        result["sgemm"] = sgemm(ARGS.sgemm_size, ARGS.repeats)
        log(f"sgemm {ARGS.sgemm_size}: torch {result['sgemm']['torch_median_gflops']:.1f} GFLOP/s")
    if ARGS.json:
        print(json.dumps(result))
    else:
        for key, m in result["models"].items():
            print(f"{key:>16}: {m['median_step_seconds'] * 1e3:9.2f} ms/step {m['images_per_second']:12,.0f} images/s")
        if result["sgemm"]:
            print(f"{'sgemm':>16}: torch {result['sgemm']['torch_median_gflops']:.1f} GFLOP/s, "
                  f"numpy {result['sgemm']['numpy_median_gflops']}")


if __name__ == "__main__":
    main()
