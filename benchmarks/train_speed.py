"""Training speed on full MNIST: ``vae.train.fit`` against the classic pytorch/examples VAE.

The peer is the recipe of https://github.com/pytorch/examples/tree/main/vae, written out here:
a 784-400-20 MLP (sigmoid output), loss = BCE(sum) + KL, Adam lr 1e-3, batch 128, a
``DataLoader`` over torchvision's MNIST with ``transforms.ToTensor()`` and ``shuffle=True``.
Ours is ``fit`` with the same model and settings. Runs alternate (peer, ours, peer, ours ...)
from the same seed, so a busy machine slows both alike.

    python benchmarks/train_speed.py                      # 1 epoch each, quick
    python benchmarks/train_speed.py --epochs 10          # the quality comparison (~105.6 nats)
    python benchmarks/train_speed.py --threads 1 --repeats 3
    python benchmarks/train_speed.py --explore            # batch size x threads x torch.compile
    python benchmarks/train_speed.py --process --epochs 3 --repeats 5   # whole process against whole process

``--process`` times whole processes, start to exit, alternating: ``python -m vae.train`` with the
recipe's flags and its default end-of-run evaluation, against the pytorch/examples main.py as
written (``PEER_SCRIPT``: imports, DataLoader + ToTensor, training, the test pass after every epoch);
it prints the medians, their ratio and the share of our run spent in the end-of-run evaluation
(the time the CLI's last line reports).

Samples/s count training only (the test evaluation after the last epoch is timed apart);
the test loss is nats per image on the 10,000 test digits with one z sample per image.
Needs MNIST in torchvision's layout under --data-dir (default ../shared/data); no download.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import BenchError, run_limited  # noqa: E402  (beside this file)
from peak import matmul_peak  # noqa: E402

from vae import train as vae_train  # noqa: E402
from vae.config import ModelConfig, TrainConfig  # noqa: E402
from vae.data import load_mnist  # noqa: E402
from vae.models import build_model  # noqa: E402

# Forward matmul FLOPs per image (fc1, fc21+fc22, fc3, fc4); forward + backward ~ 3x forward.
FWD_FLOPS = 2 * (784 * 400 + 400 * 40 + 20 * 400 + 400 * 784)
TRAIN_FLOPS = 3 * FWD_FLOPS


# --------------------------------------------------------------------------- the peer


# pytorch/examples vae/main.py's model, as written: run in this process (PeerVAE) and in the peer's script.
PEER_MODEL = """
class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5*logvar)
        eps = torch.randn_like(std)
        return mu + eps*std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar
"""
_peer: dict = {"nn": nn, "F": F, "torch": torch}
exec(PEER_MODEL, _peer)  # the peer's own source, not a re-typed copy of it
PeerVAE = _peer["VAE"]


def peer_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def run_peer(data_dir: Path, epochs: int, batch_size: int, seed: int) -> dict:
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    tf = transforms.ToTensor()
    train_loader = torch.utils.data.DataLoader(
        datasets.MNIST(str(data_dir), train=True, download=False, transform=tf), batch_size=batch_size, shuffle=True
    )
    test_loader = torch.utils.data.DataLoader(
        datasets.MNIST(str(data_dir), train=False, download=False, transform=tf), batch_size=batch_size, shuffle=False
    )
    model = PeerVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_s, seen = 0.0, 0
    for _ in range(epochs):
        model.train()
        train_loss = 0.0
        t0 = time.perf_counter()
        for data, _ in train_loader:
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = peer_loss(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
            seen += len(data)
        train_s += time.perf_counter() - t0
    model.eval()
    test_loss = 0.0
    with torch.no_grad():
        for data, _ in test_loader:
            recon_batch, mu, logvar = model(data)
            test_loss += peer_loss(recon_batch, data, mu, logvar).item()
    return {"samples_per_s": seen / train_s, "test_nats": test_loss / len(test_loader.dataset), "train_s": train_s}


# --------------------------------------------------------------------------- ours


def run_ours(data, epochs: int, batch_size: int, seed: int, compile: bool = False) -> dict:
    torch.manual_seed(seed)
    model = build_model(
        ModelConfig(arch="mlp", hidden=(400,), latent_dim=20, likelihood="bernoulli", image_shape=data.image_shape)
    )
    cfg = TrainConfig(dataset="mnist", batch_size=batch_size, lr=1e-3, epochs=epochs, seed=seed, device="cpu")
    original, compile_s = vae_train.elbo_terms, 0.0
    if compile:
        # fit with elbo_terms swapped for torch.compile(elbo_terms), compiled ahead on this very
        # model (a guard on the module) so that the training rate is the steady state. The
        # warm-up's gradients are cleared by fit's first zero_grad; fit reseeds every epoch.
        compiled = torch.compile(original)
        t0 = time.perf_counter()
        compiled(model, data.train_x[:batch_size]).loss.backward()
        compile_s = time.perf_counter() - t0
        vae_train.elbo_terms = compiled
    try:
        history = vae_train.fit(model, data, cfg)
    finally:
        vae_train.elbo_terms = original
    if history.error:
        raise RuntimeError(history.error)
    steps = len(data.train_x) // batch_size
    train_s = sum(e.get("train_seconds", steps * batch_size / e["samples_per_s"]) for e in history.epochs)
    return {
        "samples_per_s": len(history.epochs) * steps * batch_size / train_s,
        "test_nats": -history.epochs[-1]["test_elbo"],
        "train_s": train_s,
        "compile_s": compile_s,
    }


# --------------------------------------------------------------------------- whole processes

# pytorch/examples vae/main.py as written, on the CPU: argparse gives way to argv (data folder, epochs,
# seed), download=False, and the two PNGs it saves per epoch (a reconstruction grid, 64 samples) are
# left out: the CLI writes no images either (it writes its checkpoint every epoch).
PEER_SCRIPT = (
    """
import sys
import torch
import torch.utils.data
from torch import nn, optim
from torch.nn import functional as F
from torchvision import datasets, transforms

data_dir, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(seed)
device = torch.device("cpu")
train_loader = torch.utils.data.DataLoader(
    datasets.MNIST(data_dir, train=True, download=False, transform=transforms.ToTensor()),
    batch_size=128, shuffle=True)
test_loader = torch.utils.data.DataLoader(
    datasets.MNIST(data_dir, train=False, transform=transforms.ToTensor()),
    batch_size=128, shuffle=False)


"""
    + PEER_MODEL
    + """

model = VAE().to(device)
optimizer = optim.Adam(model.parameters(), lr=1e-3)


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def train(epoch):
    model.train()
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        if batch_idx % 10 == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader),
                loss.item() / len(data)))
    print('====> Epoch: {} Average loss: {:.4f}'.format(epoch, train_loss / len(train_loader.dataset)))


def test(epoch):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
    test_loss /= len(test_loader.dataset)
    print('====> Test set loss: {:.4f}'.format(test_loss))


for epoch in range(1, epochs + 1):
    train(epoch)
    test(epoch)
"""
)

RECIPE = ["--dataset", "mnist", "--kind", "vae", "--arch", "mlp", "--hidden", "400", "--latent-dim", "20"]


def timed(cmd: list[str], env: dict[str, str], name: str) -> tuple[float, str]:
    """Run ``cmd`` from the repository root; (wall seconds from start to exit, stdout)."""
    t0 = time.perf_counter()
    rc, out, err = run_limited(cmd, ROOT, env, timeout=1800, name=name)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise BenchError(f"the {name} failed (exit {rc}): {err.strip().splitlines()[-1:] or ''}")
    return wall, out


def whole_processes(args) -> int:
    """``--process``: the two whole processes, alternated; medians, ratio, our evaluation's share."""
    env = dict(os.environ, VAE_DATA_DIR=args.data_dir, PYTHONPATH=str(ROOT))
    if args.threads is not None:  # both processes read it (torch's intra-op threads)
        env["OMP_NUM_THREADS"] = str(args.threads)
    res: dict[str, list[float]] = {"peer": [], "ours": []}
    eval_s: list[float] = []
    peer_loss, our_line = "", ""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "pytorch_examples_vae.py"
        script.write_text(PEER_SCRIPT)
        print(
            f"whole processes, {args.epochs} epoch(s), batch 128, alternating (peer first), {args.repeats} pair(s); "
            f"python {sys.version.split()[0]}, torch {torch.__version__}, "
            f"{args.threads or torch.get_num_threads()} thread(s) per process",
            flush=True,
        )
        for r in range(args.repeats):
            seed = args.seed + r
            wall, out = timed([sys.executable, str(script), args.data_dir, str(args.epochs), str(seed)], env, "peer")
            res["peer"].append(wall)
            peer_loss = out.strip().splitlines()[-1]
            ours_cmd = [sys.executable, "-m", "vae.train", *RECIPE, "--batch-size", "128", "--epochs", str(args.epochs)]
            ours_cmd += ["--seed", str(seed), "--out", str(Path(tmp) / "ours.safetensors"), "--overwrite", "--quiet"]
            wall, out = timed(ours_cmd, env, "vae.train run")
            res["ours"].append(wall)
            our_line = out.strip().splitlines()[-1]
            m = re.search(r"evaluated in ([0-9.]+) s", our_line)
            eval_s.append(float(m.group(1)) if m else float("nan"))
            print(
                f"  pair {r + 1} (seed {seed}): peer {res['peer'][-1]:.1f} s, ours {wall:.1f} s "
                f"(end-of-run evaluation {eval_s[-1]:.2f} s)",
                flush=True,
            )
    peer, ours = statistics.median(res["peer"]), statistics.median(res["ours"])
    share = statistics.median(e / w for e, w in zip(eval_s, res["ours"]))
    print(f"peer (pytorch/examples main.py): median {peer:.1f} s; last: {peer_loss}")
    print(f"ours (python -m vae.train): median {ours:.1f} s; last: {our_line}")
    print(
        f"peer/ours: {peer / ours:.2f}x whole process (target >= 2x); end-of-run evaluation "
        f"{100 * share:.0f}% of our run (median {statistics.median(eval_s):.2f} s; target <= 15%)"
    )
    return 0


# --------------------------------------------------------------------------- measuring


def gflops(samples_per_s: float) -> float:
    return samples_per_s * TRAIN_FLOPS / 1e9


def explore(data, args, peak: float) -> None:
    threads_max = torch.get_num_threads()
    thread_opts = sorted({1, threads_max})
    peaks = {threads_max: peak}
    for th in thread_opts:
        if th not in peaks:
            torch.set_num_threads(th)
            peaks[th] = matmul_peak()
    rows = []
    settings = [(bs, th, False) for th in thread_opts for bs in (128, 256, 512)]
    settings.append((args.batch_size, threads_max, True))
    for bs, th, comp in settings:
        torch.set_num_threads(th)
        out = run_ours(data, args.epochs, bs, args.seed, compile=comp)
        rows.append((bs, th, comp, out))
        extra = f"  (compile {out['compile_s']:.1f} s, not counted)" if comp else ""
        print(
            f"  batch {bs:4d}  threads {th}  compile {'yes' if comp else 'no ':3s}  "
            f"{out['samples_per_s']:8.0f} samples/s  {gflops(out['samples_per_s']):6.1f} GFLOP/s "
            f"({100 * gflops(out['samples_per_s']) / peaks[th]:3.0f}% of {peaks[th]:.0f})  "
            f"test {out['test_nats']:.2f} nats{extra}",
            flush=True,
        )
    torch.set_num_threads(threads_max)
    best = max(rows, key=lambda r: r[3]["samples_per_s"])
    bs, th, comp, out = best
    print(
        f"fastest: batch {bs}, threads {th}, compile {'yes' if comp else 'no'}: "
        f"{out['samples_per_s']:.0f} samples/s ({gflops(out['samples_per_s']):.1f} GFLOP/s, "
        f"{100 * gflops(out['samples_per_s']) / peaks[th]:.0f}% of the {th}-thread matmul peak); "
        f"test {out['test_nats']:.2f} nats after {args.epochs} epoch(s)"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=1, help="epochs per run (10 for the quality comparison)")
    p.add_argument("--repeats", type=int, default=1, help="alternated (peer, ours) pairs, seeds --seed, --seed+1, ...")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="holds MNIST/raw")
    p.add_argument("--explore", action="store_true", help="also try batch sizes, threads and torch.compile for ours")
    p.add_argument("--no-peer", action="store_true", help="skip the comparison (with --explore)")
    p.add_argument(
        "--process",
        action="store_true",
        help="time whole processes instead: python -m vae.train (its default end-of-run evaluation included) "
        "against pytorch/examples' main.py as written, alternating",
    )
    args = p.parse_args(argv)
    if args.process:
        try:
            return whole_processes(args)
        except BenchError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    data_dir = Path(args.data_dir)

    t0 = time.perf_counter()
    data = load_mnist("mnist", str(data_dir), download=False)
    load_s = time.perf_counter() - t0
    peak = matmul_peak()
    print(
        f"torch {torch.__version__}, {threads} thread(s); fp32 torch.mm peak (2048^3) {peak:.1f} GFLOP/s; "
        f"MNIST {len(data.train_x)}/{len(data.test_x)} loaded in {load_s:.1f} s (not counted); "
        f"batch {args.batch_size}, {args.epochs} epoch(s); "
        f"~{TRAIN_FLOPS / 1e6:.2f} MFLOP per training image (3 x forward matmuls)",
        flush=True,
    )
    if not args.no_peer:
        res: dict[str, list[dict]] = {"peer": [], "ours": []}
        for r in range(args.repeats):
            seed = args.seed + r  # each pair shares a seed; pairs differ, so quality has a spread
            for name in ("peer", "ours"):
                if name == "peer":
                    out = run_peer(data_dir, args.epochs, args.batch_size, seed)
                else:
                    out = run_ours(data, args.epochs, args.batch_size, seed)
                res[name].append(out)
                print(
                    f"  run {r + 1} (seed {seed}) {name}: {out['samples_per_s']:8.0f} samples/s "
                    f"({out['train_s']:.1f} s training), test {out['test_nats']:.2f} nats/image",
                    flush=True,
                )
        summary = {}
        for name, runs in res.items():
            rate = statistics.median(o["samples_per_s"] for o in runs)
            nats = statistics.mean(o["test_nats"] for o in runs)
            spread = f" (sd {statistics.stdev(o['test_nats'] for o in runs):.2f} over seeds)" if len(runs) > 1 else ""
            summary[name] = (rate, nats)
            print(
                f"{name}: {rate:.0f} samples/s (median of {len(runs)}), {gflops(rate):.1f} GFLOP/s "
                f"= {100 * gflops(rate) / peak:.0f}% of peak; test loss {nats:.2f} nats/image{spread} after "
                f"{args.epochs} epoch(s)"
            )
        ratio = summary["ours"][0] / summary["peer"][0]
        diffs = [o["test_nats"] - q["test_nats"] for o, q in zip(res["ours"], res["peer"])]
        diff = statistics.mean(diffs)
        verdict = "no worse" if diff <= 0 else "worse"
        if len(diffs) > 1:
            verdict += f"; paired sd {statistics.stdev(diffs):.2f}"
        else:
            verdict += "; one seed: --repeats 3 for a spread"
        print(
            f"ours/peer: {ratio:.2f}x samples/s (target >= 2x); test loss ours - peer {diff:+.2f} nats "
            f"({verdict}); threads {threads}; matmul peak {peak:.1f} GFLOP/s"
        )
    if args.explore:
        print(f"explore (ours, {args.epochs} epoch(s) each):", flush=True)
        explore(data, args, peak)
    return 0


if __name__ == "__main__":
    sys.exit(main())
