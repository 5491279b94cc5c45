#!/usr/bin/env python3
"""PyTorch reference for `oassl cost --phases train:lvs`: the same network, objective, optimizer and input
shapes in eager `torch.nn`, timed the same way (untimed warm-up, then the mean of timed steps).

Matches stages/cost/src/lib.rs (random inputs, random init), stages/train/src/model/resnet.rs and oassl.rs
(two ResNet-18 trunks up to layer4: visual 3-channel with layer4 stride 1 at output stride 16, audio 1-channel;
Kaiming fan-out convolutions, BatchNorm weights N(1, 0.02); L2-normalised features; the audio map max-pooled;
a Linear D->512 caption projection), stages/train/src/loss/l_lvs.rs and trimap.rs (the trimap contrastive
loss), stages/train/src/stage/adam.rs (Adam, lr 1e-4, betas 0.9/0.999, eps 1e-8) and the spectrogram shape of
stages/train/src/audio/spectrogram.rs (512-sample window, hop 238, 22.05 kHz: 257 bins).

Prints one JSON line: {"phase", "device", "precision", "batch_size", "seconds_per_iter", "samples_per_s",
"peak_memory_bytes", "threads"}.
"""

import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(c_in, c_out, kernel, stride, padding):
    c = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
    nn.init.kaiming_normal_(c.weight, mode="fan_out", nonlinearity="relu")
    return c


def bn(channels):
    b = nn.BatchNorm2d(channels)
    nn.init.normal_(b.weight, 1.0, 0.02)
    nn.init.zeros_(b.bias)
    return b


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1, self.bn1 = conv(c_in, c_out, 3, stride, 1), bn(c_out)
        self.conv2, self.bn2 = conv(c_out, c_out, 3, 1, 1), bn(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(conv(c_in, c_out, 1, stride, 0), bn(c_out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(y + s)


class ResNet18Trunk(nn.Module):
    def __init__(self, in_channels, layer4_stride):
        super().__init__()
        self.conv1, self.bn1 = conv(in_channels, 64, 7, 2, 3), bn(64)
        layers, c_in = [], 64
        for s, width in enumerate([64, 128, 256, 512]):
            first = layer4_stride if s == 3 else (2 if s > 0 else 1)
            layers.append(nn.Sequential(BasicBlock(c_in, width, first), BasicBlock(width, width, 1)))
            c_in = width
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.layers(x)


class Model(nn.Module):
    def __init__(self, text_dim, visual_output_stride):
        super().__init__()
        self.visual = ResNet18Trunk(3, 1 if visual_output_stride == 16 else 2)
        self.audio = ResNet18Trunk(1, 2)
        self.text_proj = nn.Linear(text_dim, 512)

    def forward(self, frames, spec, fg, bg):
        v = F.normalize(self.visual(frames), dim=1, eps=1e-12)
        a = F.normalize(self.audio(spec).amax(dim=(2, 3)), dim=1, eps=1e-12)
        return v, a, F.normalize(self.text_proj(fg), dim=-1), F.normalize(self.text_proj(bg), dim=-1)


def lvs_loss(visual, audio, alpha_p=0.65, alpha_n=0.4, omega=0.03, temperature=0.07):
    # Losses in f32 whatever the forward ran in (stages/train/src/loss/mod.rs widens its inputs).
    visual, audio = visual.float(), audio.float()
    sim_all = torch.einsum("bchw,jc->bjhw", visual, audio)
    b = sim_all.shape[0]
    flat = sim_all.reshape(b, b, -1)
    own = flat.diagonal(0, 0, 1).transpose(0, 1)

    def masked_mean(mask, sim):
        return (mask * sim).sum(-1) / mask.sum(-1)

    positive = masked_mean(torch.sigmoid((own - alpha_p) / omega), own)
    hard = masked_mean(torch.sigmoid((own - alpha_n) / -omega), own)
    others = masked_mean(torch.sigmoid((flat - alpha_p) / omega), flat)
    others = others.masked_fill(torch.eye(b, dtype=torch.bool, device=sim_all.device), float("-inf"))
    logits = torch.cat([positive.unsqueeze(1), others, hard.unsqueeze(1)], 1) / temperature
    return (logits.logsumexp(1) - positive / temperature).mean()


def peak_memory(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_reserved(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--phase", choices=["train:lvs", "infer"], default="train:lvs")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--audio-seconds", type=float, default=1.0)
    p.add_argument("--visual-output-stride", type=int, choices=[16, 32], default=16)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--text-dim", type=int, default=384)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps torch's default")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32")
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = Model(args.text_dim, args.visual_output_stride).to(device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    # Spectrogram frames as scipy counts them: (samples - overlap) / hop.
    frames_t = (round(args.audio_seconds * 22050) - 274) // 238
    b = args.batch_size
    frames = torch.randn(b, 3, args.image_size, args.image_size, device=device)
    spec = torch.randn(b, 1, 257, frames_t, device=device)
    fg = torch.randn(b, args.k, args.text_dim, device=device)
    bg = torch.randn(b, args.text_dim, device=device)
    if args.channels_last:
        frames = frames.contiguous(memory_format=torch.channels_last)
        spec = spec.contiguous(memory_format=torch.channels_last)
    amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.precision)
    if args.phase == "infer":
        model.eval()
        amp_dtype = None

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")

    def train_step():
        with autocast():
            v, a, _, _ = model(frames, spec, fg, bg)
        loss = lvs_loss(v, a)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    @torch.no_grad()
    def infer_step():
        v = F.normalize(model.visual(frames), dim=1)
        a = F.normalize(model.audio(spec).amax(dim=(2, 3)), dim=1)
        torch.einsum("bchw,bc->bhw", v, a)

    step = train_step if args.phase == "train:lvs" else infer_step

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    started = time.perf_counter()
    for _ in range(args.iterations):
        step()
    sync()
    seconds = (time.perf_counter() - started) / args.iterations
    print(
        json.dumps(
            {
                "phase": args.phase,
                "device": str(device),
                "precision": args.precision,
                "batch_size": b,
                "seconds_per_iter": seconds,
                "samples_per_s": b / seconds,
                "peak_memory_bytes": peak_memory(device),
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
