"""Analytic shapes for renderer and mesh tests: SDFs, occupancies, exact ray hits and normals.

Written from the geometry alone (quadratic for spheres, slabs for boxes), independent of
the library's renderers.
"""

import torch

from svrecon.fields import FieldOutput


def sphere_sdf(points, radius=0.6, center=(0.0, 0.0, 0.0)):
    c = torch.as_tensor(center, dtype=points.dtype)
    return (points - c).norm(dim=-1) - radius


def box_sdf(points, half=(0.5, 0.3, 0.4)):
    h = torch.as_tensor(half, dtype=points.dtype)
    q = points.abs() - h
    q_max = q.max(dim=-1).values
    # Exactly on a face the outside branch's norm has a zero gradient; take the inside one.
    return torch.where(q_max > 0, q.clamp_min(0).norm(dim=-1), q_max)


def plane_sdf(points, normal=(0.0, 1.0, 0.0), offset=0.1):
    n = torch.as_tensor(normal, dtype=points.dtype)
    return points @ n - offset


def as_field(sdf_fn, kind="sdf", sharpness=200.0, **kwargs):
    """A field callable ``points -> FieldOutput`` of an analytic SDF.

    ``kind="occupancy"`` returns ``sigmoid(-sharpness * sdf)``, whose 0.5 level set is the
    SDF's zero set. Features are the point and its SDF, rgb a fixed function of the point.
    """

    def field(points):
        s = sdf_fn(points, **kwargs)
        rgb = (points.sin() + 1) / 2
        feats = torch.cat([points, s[..., None]], dim=-1)
        if kind == "sdf":
            return FieldOutput(sdf=s, features=feats, rgb=rgb)
        return FieldOutput(occupancy=torch.sigmoid(-sharpness * s), features=feats, rgb=rgb)

    return field


def ray_sphere(origins, directions, radius=0.6, center=(0.0, 0.0, 0.0)):
    """First hit distance (inf for a miss) and outward normal of unit-direction rays."""
    c = torch.as_tensor(center, dtype=origins.dtype)
    oc = origins - c
    b = (oc * directions).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - radius**2)
    t = -b - disc.clamp_min(0).sqrt()
    t = torch.where((disc > 0) & (t > 0), t, torch.full_like(t, float("inf")))
    p = origins + torch.where(torch.isfinite(t), t, 0)[..., None] * directions
    return t, (p - c) / radius


def ray_box(origins, directions, half=(0.5, 0.3, 0.4)):
    """Slab-method first hit distance (inf for a miss) and outward normal."""
    h = torch.as_tensor(half, dtype=origins.dtype)
    with torch.no_grad():
        inv = 1.0 / directions
        t1, t2 = (-h - origins) * inv, (h - origins) * inv
        tmin, tmax = torch.minimum(t1, t2), torch.maximum(t1, t2)
        enter, axis = tmin.max(dim=-1)
        leave = tmax.min(dim=-1).values
        hit = (enter <= leave) & (enter > 0)
        t = torch.where(hit, enter, torch.full_like(enter, float("inf")))
        normal = torch.zeros_like(origins)
        sign = -torch.sign(directions.gather(-1, axis[..., None]))
        normal.scatter_(-1, axis[..., None], sign)
    return t, normal


def ray_plane(origins, directions, near, normal=(0.0, 1.0, 0.0), offset=0.1):
    """First point of the solid half-space ``n.x < offset`` on the ray from ``near`` on.

    Rays that start inside the solid return ``near`` with a zero normal (no surface).
    """
    n = torch.as_tensor(normal, dtype=origins.dtype)
    start_inside = (origins + near[..., None] * directions) @ n < offset
    t = (offset - origins @ n) / (directions @ n)
    crossing = (t > near) & ~start_inside
    t = torch.where(crossing, t, torch.full_like(t, float("inf")))
    t = torch.where(start_inside, near, t)
    normal_out = n.expand_as(origins) * crossing[..., None]
    return t, normal_out
