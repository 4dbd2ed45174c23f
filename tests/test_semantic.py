"""svrecon.semantic: neighbours against a brute-force search, the authors' CSV format,
IoU-weighted picking (a statistical test), the dataset cache, and open_clip loaded from
a local file exactly as a user would load real weights."""

import json

import pytest
import torch
import torch.nn.functional as F

from svrecon.semantic import (
    OpenCLIPEmbedder,
    ThumbnailEmbedder,
    embed_dataset,
    neighbour_weights,
    pick_neighbours,
    read_neighbour_csv,
    top_k_neighbours,
    write_neighbour_csv,
)


def brute_force_top_k(x, k):
    """Naive reference: every pair's cosine, sorted per query, the query skipped."""
    out_i, out_s = [], []
    for q in range(len(x)):
        sims = []
        for j in range(len(x)):
            if j != q:
                c = float(torch.dot(x[q], x[j]) / (x[q].norm() * x[j].norm()))
                sims.append((-c, j))
        sims.sort()
        out_i.append([j for _, j in sims[:k]])
        out_s.append([-c for c, _ in sims[:k]])
    return torch.tensor(out_i), torch.tensor(out_s, dtype=torch.float64)


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_top_k_equals_brute_force(chunk_size):
    x = torch.randn(60, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = top_k_neighbours(x, k=5, chunk_size=chunk_size)
    indices, scores = brute_force_top_k(x, 5)
    assert torch.equal(got.indices, indices)
    assert torch.allclose(got.scores.double(), scores, atol=1e-6)


def test_duplicates_are_found_and_the_query_is_excluded():
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    x[7] = x[3] * 2  # same direction
    got = top_k_neighbours(x, k=3)
    assert got.indices[3, 0] == 7 and got.indices[7, 0] == 3
    assert torch.isclose(got.scores[3, 0], torch.tensor(1.0))
    assert not (got.indices == torch.arange(10)[:, None]).any()
    with pytest.raises(ValueError, match="k"):
        top_k_neighbours(x, k=10)
    with pytest.raises(ValueError, match="embeddings"):
        top_k_neighbours(torch.zeros(5), k=1)


def test_csv_is_the_authors_format_and_reads_back(tmp_path):
    names = ["chair/b.png", "chair/a.png", "table/c.png", "table/d.png"]
    x = torch.tensor([[1.0, 0.1], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    nn = top_k_neighbours(x, k=2)
    path = write_neighbour_csv(tmp_path / "chair_train.csv", names, nn)
    lines = path.read_text().splitlines()
    assert lines[0] == "Query,Top_1,Top_2,Top_1_score,Top_2_score"
    assert [line.split(",")[0] for line in lines[1:]] == sorted(names)
    assert lines[1].startswith("chair/a.png,chair/b.png,")
    assert lines[1].split(",")[3] == f"{float(nn.scores[1, 0]):.4f}"
    back = read_neighbour_csv(path, names)
    assert torch.equal(back.indices, nn.indices)
    assert torch.allclose(back.scores, nn.scores, atol=5e-5)


def test_csv_errors_name_the_problem(tmp_path):
    names = ["a", "b", "c"]
    bad = tmp_path / "bad.csv"
    bad.write_text("Query,Top_1,Top_1_score\na,b,0.9\nb,zzz,0.8\nc,a,0.7\n")
    with pytest.raises(ValueError, match="zzz"):
        read_neighbour_csv(bad, names)
    short = tmp_path / "short.csv"
    short.write_text("Query,Top_1,Top_1_score\na,b,0.9\n")
    with pytest.raises(ValueError, match="no row for 2 items"):
        read_neighbour_csv(short, names)
    with pytest.raises(ValueError, match="Query"):
        (tmp_path / "x.csv").write_text("a,b\n")
        read_neighbour_csv(tmp_path / "x.csv", names)
    with pytest.raises(FileNotFoundError):
        read_neighbour_csv(tmp_path / "missing.csv", names)


def test_weights_are_one_minus_iou_to_the_fourth():
    q = torch.zeros(1, 4, 4, dtype=torch.bool)
    q[0, :2] = True  # 8 pixels
    n = torch.zeros(1, 3, 4, 4, dtype=torch.bool)
    n[0, 0, :2] = True  # IoU 1
    n[0, 1, :1] = True  # IoU 4/8
    n[0, 2, 2:] = True  # IoU 0
    w = neighbour_weights(q, n)
    raw = torch.tensor([0.0, 0.5**4, 1.0])
    assert torch.allclose(w[0], raw / raw.sum())
    same = neighbour_weights(q, q[:, None].expand(1, 3, 4, 4))
    assert torch.allclose(same, torch.full((1, 3), 1 / 3))  # all identical: uniform


def test_picking_frequencies_follow_the_weights():
    q = torch.zeros(1, 10, 10, dtype=torch.bool)
    q[0, :5] = True
    n = torch.zeros(1, 3, 10, 10, dtype=torch.bool)
    n[0, 0, :4] = True
    n[0, 1, :2] = True
    n[0, 2, 5:] = True
    p = neighbour_weights(q, n)[0]
    draws = 20_000
    g = torch.Generator().manual_seed(0)
    picks = pick_neighbours(q.expand(draws, 10, 10), n.expand(draws, 3, 10, 10), generator=g)
    freq = torch.bincount(picks, minlength=3).double() / draws
    # each frequency within 4 standard errors of its probability
    tolerance = 4 * torch.sqrt(p.double() * (1 - p.double()) / draws)
    assert ((freq - p.double()).abs() <= tolerance + 1e-12).all(), (freq, p)


class CountingEmbedder:
    name = "counting"

    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        return images.flatten(1)[:, :5]


def test_embed_dataset_batches_and_caches(tmp_path):
    data = [{"image": torch.rand(3, 4, 4)} for _ in range(10)]
    embedder = CountingEmbedder()
    cache = tmp_path / "emb.pt"
    a = embed_dataset(embedder, data, batch_size=4, cache=cache, progress=False)
    assert a.shape == (10, 5) and embedder.calls == 3
    assert torch.equal(a[7], data[7]["image"].flatten()[:5])
    b = embed_dataset(embedder, data, batch_size=4, cache=cache, progress=False)
    assert torch.equal(a, b) and embedder.calls == 3  # read from the cache
    embed_dataset(embedder, data[:6], batch_size=4, cache=cache, progress=False)
    assert embedder.calls == 5  # another dataset: recomputed
    with pytest.raises(ValueError, match="non-finite"):
        embed_dataset(lambda x: torch.full((len(x), 2), float("nan")), data, progress=False)


def test_thumbnail_embedder_needs_no_weights():
    e = ThumbnailEmbedder(8)
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    images[1] = images[0] * 0.98  # nearly the same picture
    out = e(images)
    assert out.shape == (4, 192) and torch.allclose(out.norm(dim=-1), torch.ones(4))
    nn = top_k_neighbours(out, k=1)
    assert nn.indices[0, 0] == 1 and nn.indices[1, 0] == 0


TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16,
                   "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random-weight open_clip model, saved the way a user saves real weights."""
    import open_clip

    root = tmp_path_factory.mktemp("clip")
    config = root / "svrecon-tiny-clip.json"
    config.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("svrecon-tiny-clip", pretrained=None)
    weights = root / "tiny.pt"
    torch.save(model.state_dict(), weights)
    return config, weights, model.eval()


def test_open_clip_from_a_local_file_matches_the_model(tiny_clip):
    config, weights, model = tiny_clip
    embedder = OpenCLIPEmbedder("svrecon-tiny-clip", weights, model_config=config, device="cpu")
    images = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    out = embedder(images)
    # independently: resize, OpenAI normalisation, the saved model's image tower
    x = F.interpolate(images, size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = F.normalize(model.encode_image((x - mean) / std), dim=-1)
    assert torch.allclose(out, expected, atol=1e-5)
    assert embedder.name.startswith("open_clip:svrecon-tiny-clip:")


def test_open_clip_errors_say_what_to_provide(tiny_clip, tmp_path):
    config, weights, _ = tiny_clip
    with pytest.raises(FileNotFoundError, match="weights_path"):
        OpenCLIPEmbedder("ViT-L-14", tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="never downloads"):
        OpenCLIPEmbedder("hf-hub:laion/CLIP-ViT-B-32", weights)
    with pytest.raises(ValueError, match="no architecture"):
        OpenCLIPEmbedder("no-such-model", weights)
    with pytest.raises(ValueError, match="does not match"):
        OpenCLIPEmbedder("ViT-B-32", weights)  # the tiny weights in a real architecture
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        OpenCLIPEmbedder("svrecon-tiny-clip", junk, model_config=config)
