"""Small but real torch models the tests export to ONNX (torchvision is unavailable beside CPU torch).

Each covers a family of operators: residual CNN, depthwise + squeeze-excite + hardswish, multi-branch
concat, transformer encoder, recurrent, encoder-decoder with upsampling.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn(c_in, c_out, k=3, stride=1, groups=1, act=nn.ReLU):
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c_in, c_out, 3, stride), conv_bn(c_out, c_out, 3, act=None))
        self.shortcut = conv_bn(c_in, c_out, 1, stride, act=None) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    def __init__(self, c_in, width, stride=1):
        super().__init__()
        c_out = width * 4
        self.body = nn.Sequential(
            conv_bn(c_in, width, 1), conv_bn(width, width, 3, stride), conv_bn(width, c_out, 1, act=None)
        )
        self.shortcut = conv_bn(c_in, c_out, 1, stride, act=None) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet-18-style (``bottleneck=False``) or ResNet-50 (``bottleneck=True, widths 64..512, 3-4-6-3``)."""

    def __init__(self, blocks=(2, 2, 2, 2), widths=(16, 32, 64, 128), bottleneck=False, num_classes=10, stem_stride=1):
        super().__init__()
        layers = [conv_bn(3, widths[0], 3 if stem_stride == 1 else 7, stem_stride)]
        if stem_stride > 1:
            layers.append(nn.MaxPool2d(3, 2, 1))
        c = widths[0]
        for stage, (n, w) in enumerate(zip(blocks, widths)):
            for i in range(n):
                stride = 2 if i == 0 and stage > 0 else 1
                if bottleneck:
                    layers.append(Bottleneck(c, w, stride))
                    c = w * 4
                else:
                    layers.append(BasicBlock(c, w, stride))
                    c = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def resnet50():
    return ResNet((3, 4, 6, 3), (64, 128, 256, 512), bottleneck=True, num_classes=1000, stem_stride=2)


class SqueezeExcite(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // r, 1), nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class InvertedResidual(nn.Module):
    def __init__(self, c_in, c_out, expand, k, stride, se, act):
        super().__init__()
        hidden = c_in * expand
        layers = [conv_bn(c_in, hidden, 1, act=act)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, k, stride, groups=hidden, act=act)]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers.append(conv_bn(hidden, c_out, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV3(nn.Module):
    """MobileNetV3-small-like: depthwise convs, squeeze-excite, hardswish, ReLU6-free blocks."""

    # (expand, out, kernel, stride, se, act)
    CONFIG = ((1, 16, 3, 2, True, nn.ReLU), (4, 24, 3, 2, False, nn.ReLU), (3, 24, 3, 1, False, nn.ReLU),
              (4, 40, 5, 2, True, nn.Hardswish), (6, 40, 5, 1, True, nn.Hardswish), (3, 48, 5, 1, True, nn.Hardswish))

    def __init__(self, num_classes=10, config=CONFIG):
        super().__init__()
        layers, c = [conv_bn(3, 16, 3, 2, act=nn.Hardswish)], 16
        for expand, out, k, stride, se, act in config:
            layers.append(InvertedResidual(c, out, expand, k, stride, se, act))
            c = out
        layers.append(conv_bn(c, 96, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(96, 128), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class MobileNetV2Block(nn.Module):
    """ReLU6 (Clip) and SiLU (Sigmoid * x) variants of an inverted residual."""

    def __init__(self, c=16):
        super().__init__()
        self.stem = conv_bn(3, c, 3, act=nn.ReLU6)
        self.block = InvertedResidual(c, c, 6, 3, 1, False, nn.SiLU)

    def forward(self, x):
        return self.block(self.stem(x)).mean((2, 3))


class InceptionBlock(nn.Module):
    def __init__(self, c_in, c1, c3, c5, cp):
        super().__init__()
        self.b1 = conv_bn(c_in, c1, 1)
        self.b3 = nn.Sequential(conv_bn(c_in, c3 // 2, 1), conv_bn(c3 // 2, c3, 3))
        self.b5 = nn.Sequential(conv_bn(c_in, c5 // 2, 1), conv_bn(c5 // 2, c5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(c_in, cp, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class Inception(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = conv_bn(3, 32, 3)
        self.blocks = nn.Sequential(InceptionBlock(32, 16, 32, 8, 8), nn.AvgPool2d(2), InceptionBlock(64, 32, 48, 16, 16))
        self.fc = nn.Linear(112, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, dim * 3), nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """A small vision transformer: patch embedding, class token, position embedding, 2 encoder layers."""

    def __init__(self, image=32, patch=8, dim=64, depth=2, heads=4, num_classes=10):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.layers = nn.Sequential(*[EncoderLayer(dim, heads, dim * 2) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.layers(x))[:, 0])


class RecurrentNet(nn.Module):
    """LSTM or GRU over a sequence, linear head on the last step."""

    def __init__(self, cell="lstm", features=16, hidden=32, num_classes=5):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn, self.head = rnn(features, hidden, batch_first=True), nn.Linear(hidden, num_classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class UNet(nn.Module):
    """Two-level U-Net: downsampling, nearest upsampling, skip concatenation."""

    def __init__(self, c=8, classes=2):
        super().__init__()
        self.down1, self.down2 = nn.Sequential(conv_bn(3, c), conv_bn(c, c)), nn.Sequential(conv_bn(c, 2 * c), conv_bn(2 * c, 2 * c))
        self.bottom = nn.Sequential(conv_bn(2 * c, 4 * c), conv_bn(4 * c, 4 * c))
        self.up2, self.up1 = conv_bn(6 * c, 2 * c), conv_bn(3 * c, c)
        self.out = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(F.max_pool2d(d1, 2))
        b = self.bottom(F.max_pool2d(d2, 2))
        u2 = self.up2(torch.cat([F.interpolate(b, scale_factor=2.0, mode="nearest"), d2], 1))
        u1 = self.up1(torch.cat([F.interpolate(u2, scale_factor=2.0, mode="nearest"), d1], 1))
        return self.out(u1)


# name -> (builder, example input shape)
ZOO = {
    "resnet": (lambda: ResNet(), (1, 3, 32, 32)),
    "mobilenetv3": (lambda: MobileNetV3(), (1, 3, 64, 64)),
    "mobilenetv2_silu": (lambda: MobileNetV2Block(), (1, 3, 16, 16)),
    "inception": (lambda: Inception(), (1, 3, 32, 32)),
    "vit": (lambda: ViT(), (1, 3, 32, 32)),
    "lstm": (lambda: RecurrentNet("lstm"), (1, 12, 16)),
    "gru": (lambda: RecurrentNet("gru"), (1, 12, 16)),
    "unet": (lambda: UNet(), (1, 3, 32, 32)),
}


def build(name: str, seed: int = 0):
    """The model (eval mode, seeded, BN statistics randomised so folding is not trivial) and its input."""
    torch.manual_seed(seed)
    builder, shape = ZOO[name]
    model = builder()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    return model.eval(), torch.randn(*shape)


def inference_params(model: nn.Module) -> int:
    """Parameters under the CG convention, computed by torch itself: fx's conv-BN fusion, then count."""
    from torch.fx.experimental.optimization import fuse

    fused = fuse(model.eval())
    return sum(p.numel() for p in fused.parameters())
