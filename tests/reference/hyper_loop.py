"""Naive reference for HyperMLP: a Python loop over instances with nn.functional.linear."""

import torch
import torch.nn.functional as F


def hyper_mlp_loop(
    weights, biases, x, extra=None, concat_layers=(), layer_norm=True, final_act=False
):
    outs = []
    for b in range(x.shape[0]):
        h = x[b]
        for i, (w, bias) in enumerate(zip(weights, biases, strict=True)):
            if i in concat_layers:
                h = torch.cat([h, extra[b]], dim=-1)
            h = F.linear(h, w[b].T, bias[b])
            if i < len(weights) - 1 or final_act:
                if layer_norm:
                    mu = h.mean(-1, keepdim=True)
                    var = ((h - mu) ** 2).mean(-1, keepdim=True)
                    h = (h - mu) / torch.sqrt(var + 1e-5)
                h = torch.relu(h)
        outs.append(h)
    return torch.stack(outs)
