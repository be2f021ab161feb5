"""Reference outputs of torch.nn.LSTM and torch.nn.GRU for crates/rl-modules/src/recurrent.rs.

Writes crates/rl-modules/testdata/rnn_reference.json: for each case, the layers' weights in
PyTorch's layout (weight_ih_l{k} [G*H, D_in], weight_hh_l{k} [G*H, H], bias_ih_l{k},
bias_hh_l{k}), an input [T, N, D], a random non-zero initial state (h0, and c0 for an LSTM,
[L, N, H]) and PyTorch's output [T, N, H] and final state (h_n, c_n), all as flat row-major
lists of float32 values.

Rerun from the repository root (CPU torch is enough; any recent version should agree to
~1e-7):

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch
    /tmp/torchvenv/bin/python tools/torch/rnn_reference.py

The committed fixture was made with torch 2.15.0+cu132 from PyPI, run on the CPU in float32.
"""

import json
import os

import torch

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "..", "crates", "rl-modules", "testdata", "rnn_reference.json",
)

INPUT_DIM, HIDDEN_DIM, BATCH, SEQ_LEN = 3, 5, 4, 6


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def case(rnn_type, num_layers, seed):
    torch.manual_seed(seed)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[rnn_type]
    rnn = cls(INPUT_DIM, HIDDEN_DIM, num_layers=num_layers)  # time-major: [T, N, D]
    # Wider than PyTorch's default U(-1/sqrt(H), 1/sqrt(H)), so that the gates saturate
    # differently and a swapped gate or a wrong equation shows clearly.
    with torch.no_grad():
        for p in rnn.parameters():
            p.uniform_(-0.8, 0.8)
    x = torch.randn(SEQ_LEN, BATCH, INPUT_DIM)
    h0 = torch.randn(num_layers, BATCH, HIDDEN_DIM) * 0.5
    c0 = torch.randn(num_layers, BATCH, HIDDEN_DIM) * 0.5
    with torch.no_grad():
        if rnn_type == "lstm":
            out, (h_n, c_n) = rnn(x, (h0, c0))
        else:
            out, h_n = rnn(x, h0)
    layers = [
        {
            "weight_ih": flat(getattr(rnn, f"weight_ih_l{k}")),
            "weight_hh": flat(getattr(rnn, f"weight_hh_l{k}")),
            "bias_ih": flat(getattr(rnn, f"bias_ih_l{k}")),
            "bias_hh": flat(getattr(rnn, f"bias_hh_l{k}")),
        }
        for k in range(num_layers)
    ]
    result = {
        "name": f"{rnn_type}_{num_layers}_layers",
        "rnn_type": rnn_type,
        "input_dim": INPUT_DIM,
        "hidden_dim": HIDDEN_DIM,
        "num_layers": num_layers,
        "seq_len": SEQ_LEN,
        "batch": BATCH,
        "layers": layers,
        "input": flat(x),
        "h0": flat(h0),
        "output": flat(out),
        "h_n": flat(h_n),
    }
    if rnn_type == "lstm":
        result["c0"] = flat(c0)
        result["c_n"] = flat(c_n)
    return result


def main():
    torch.set_num_threads(1)
    cases = [
        case("lstm", 2, 1),
        case("gru", 2, 2),
        case("lstm", 1, 3),
        case("gru", 1, 4),
    ]
    doc = {"torch_version": torch.__version__, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
