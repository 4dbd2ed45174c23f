import pytest
import torch
import torchvision
from torch import nn

from svrecon.cameras import (
    EulerTrigHead,
    ProjectionMatrixCamera,
    ProjectionMatrixHead,
    Rotation6DHead,
    pose_from_angle_trig,
)
from svrecon.encoders import ResNetEncoder, VGG16FeaturePyramid


def test_resnet_encoder_latent_splits_and_channels():
    msu = {"category": 3, "albedo": 256, "shape": 256, "camera": 12, "light": 27}
    enc = ResNetEncoder("resnet18", msu, in_channels=3, norm="group").eval()
    out = enc(torch.rand(2, 3, 64, 64))
    assert list(out) == list(msu) and all(out[k].shape == (2, v) for k, v in msu.items())
    assert any(isinstance(m, nn.GroupNorm) for m in enc.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in enc.modules())
    four = ResNetEncoder("resnet34", {"shape": 64, "texture": 64}, in_channels=4).eval()
    assert four(torch.rand(1, 4, 64, 64))["texture"].shape == (1, 64)
    with pytest.raises(
        ValueError, match=r"images: expected shape \[B, 4, H, W\], got \[1, 3, 64, 64\]"
    ):
        four(torch.rand(1, 3, 64, 64))


def test_resnet_weights_load_from_file_and_extend_to_four_channels(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)
    enc = ResNetEncoder("resnet18", {"shape": 8}, in_channels=4, weights_path=path)
    torch.testing.assert_close(
        enc.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight
    )
    torch.testing.assert_close(enc.backbone.conv1.weight[:, :3], reference.conv1.weight)
    torch.testing.assert_close(enc.backbone.conv1.weight[:, 3], reference.conv1.weight.mean(1))


def test_bad_weight_files_raise_clearly(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights_path: cannot read a state_dict"):
        ResNetEncoder(weights_path=corrupt)
    wrong = tmp_path / "wrong.pt"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match="does not match the network"):
        ResNetEncoder("resnet18", weights_path=wrong)


def test_vgg_pyramid_scales():
    net = VGG16FeaturePyramid(global_dim=32).eval()
    with torch.no_grad():
        g, maps = net(torch.rand(1, 3, 64, 64))
    assert g.shape == (1, 32)
    assert [m.shape[1] for m in maps] == [64, 128, 256, 512, 512] and sum(net.channels) == 1472
    assert [m.shape[-1] for m in maps] == [64, 32, 16, 8, 4]


def test_euler_trig_head_gives_unit_pairs_and_poses():
    head = EulerTrigHead(5)
    trig = head(torch.randn(4, 5))
    torch.testing.assert_close(trig.view(4, 3, 2).norm(dim=-1), torch.ones(4, 3))
    pose = head.pose(trig, "shapeclipper", 2.0)
    torch.testing.assert_close(pose, pose_from_angle_trig("shapeclipper", trig, 2.0))


def test_rotation_6d_head():
    head = Rotation6DHead(5, predict_scale=True)
    pose, scale = head(torch.randn(3, 5))
    R = pose[..., :3]
    torch.testing.assert_close(
        R.transpose(-1, -2) @ R, torch.eye(3).expand(3, 3, 3), atol=1e-5, rtol=0
    )
    assert scale.shape == (3,)
    cam = head.camera(torch.randn(3, 5), 50.0, 32.0)
    assert len(cam) == 3


def test_projection_matrix_head_starts_at_mean_and_learns():
    head = ProjectionMatrixHead(5)
    cam = head(torch.randn(2, 5))
    assert isinstance(cam, ProjectionMatrixCamera)
    torch.testing.assert_close(cam.P, head.mean.expand(2, 3, 4))
    pix = cam.project(torch.zeros(2, 1, 3))
    pix.sum().backward()
    assert head.linear.weight.grad.abs().sum() > 0


def test_conv_encoder_reads_voxel_grids_of_any_size_item_by_item():
    from svrecon.encoders import ConvEncoder

    torch.manual_seed(0)
    encoder = ConvEncoder(4, (8, 16), {"category": 3, "shape": 5}, spatial_dims=3).eval()
    grids = torch.rand(3, 4, 16, 16, 16)
    codes = encoder(grids)
    assert codes["category"].shape == (3, 3) and codes["shape"].shape == (3, 5)
    alone = encoder(grids[1:2])  # GroupNorm: no statistic crosses the batch
    torch.testing.assert_close(alone["shape"], codes["shape"][1:2])
    assert encoder(torch.rand(2, 4, 8, 8, 8))["shape"].shape == (2, 5)  # coarse-to-fine
    with pytest.raises(ValueError, match="images: expected shape"):
        encoder(torch.rand(2, 4, 16, 16))
    with pytest.raises(ValueError, match="spatial_dims"):
        ConvEncoder(4, spatial_dims=1)


def test_resnet_feature_maps_feed_the_same_codes_as_forward():
    from svrecon.encoders import ResNetEncoder

    net = ResNetEncoder("resnet18", {"a": 3, "b": 5}, norm="group").eval()
    images = torch.rand(2, 3, 64, 64)
    maps, pooled = net.feature_maps(images)
    assert [m.shape[1] for m in maps] == [64, 128, 256, 512]
    assert [m.shape[-1] for m in maps] == [16, 8, 4, 2]
    codes = net.codes(pooled)
    for key, value in net(images).items():
        torch.testing.assert_close(codes[key], value)
