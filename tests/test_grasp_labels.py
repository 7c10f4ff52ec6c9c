"""Grasp labels of rendered scenes: planar grasp maths, maps, scene trials, files, determinism."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from simdata.errors import SimdataError
from simdata.grasping import GripperConfig
from simdata.grasping.labels import (CONFIG_FILE, GraspLabelConfig, label_dataset,
                                     load_dataset_models, perturbed_pose, read_view_grasps,
                                     record_pose, scene_objects)
from simdata.grasping.planar import (PlanarGrasp, angle_difference, approach_angle,
                                     decode_grasp_maps, grasp_pose_in_camera, paint_grasp_maps,
                                     project_grasp, rectangle_iou, rectangle_match,
                                     smooth_grasp_maps, wrap_angle)

K = np.array([[290.0, 0, 160.0], [0, 290.0, 120.0], [0, 0, 1]])


@pytest.mark.parametrize("angle", [0.0, 0.4, 1.2, -1.0, -np.pi / 2 + 0.05])
def test_painted_grasp_decodes_to_itself(angle):
    g = PlanarGrasp(141.0, 97.0, angle, 36.0, 10.0)
    maps = paint_grasp_maps([g], (240, 320))
    assert maps[0].max() == 1.0 and maps[0][97, 141] == 1.0
    assert (maps[0] > 0).sum() == pytest.approx(36 / 3 * 10, rel=0.35)  # the centre third
    (d,) = decode_grasp_maps(*smooth_grasp_maps(maps), n=1, threshold=0.1)
    assert np.hypot(d.u - g.u, d.v - g.v) <= 1.0
    assert angle_difference(d.angle, g.angle) < 1e-3
    assert d.width == pytest.approx(36.0, rel=0.02)


def test_maps_are_empty_without_grasps_and_best_quality_wins():
    assert not paint_grasp_maps([], (40, 50)).any()
    a = PlanarGrasp(20.0, 20.0, 0.0, 30.0, 8.0, quality=0.4)
    b = PlanarGrasp(20.0, 20.0, 1.0, 30.0, 8.0, quality=0.9)
    for order in ([a, b], [b, a]):
        maps = paint_grasp_maps(order, (40, 50))
        assert maps[0][20, 20] == pytest.approx(0.9)
        assert np.arctan2(maps[2][20, 20], maps[1][20, 20]) / 2 == pytest.approx(1.0, abs=1e-6)


def test_decode_keeps_peaks_apart_and_best_first():
    q = np.zeros((60, 80), np.float32)
    q[10, 10], q[12, 12], q[40, 60] = 0.5, 0.6, 0.9
    zeros = np.zeros_like(q)
    got = decode_grasp_maps(q, zeros + 1, zeros, zeros + 20, n=5, min_distance=5, threshold=0.1)
    assert [(g.u, g.v) for g in got] == [(60, 40), (12, 12)]
    assert got[0].quality == pytest.approx(0.9)
    mask = np.ones_like(q, bool)
    mask[40, 60] = False
    assert decode_grasp_maps(q, zeros + 1, zeros, zeros, n=1, min_distance=5, mask=mask)[0].u == 12


def test_projection_and_back_projection_agree():
    g = PlanarGrasp(200.0, 90.0, 0.7, 40.0, 10.0)
    T, width_m = grasp_pose_in_camera(g, 0.6, K)
    assert width_m == pytest.approx(40 * 0.6 / 290)
    assert approach_angle(T) == pytest.approx(0.0)
    back = project_grasp(T, width_m, 0.02, K)
    assert (back.u, back.v) == pytest.approx((200.0, 90.0))
    assert angle_difference(back.angle, 0.7) < 1e-9
    assert back.width == pytest.approx(40.0) and back.height == pytest.approx(0.02 * 290 / 0.6)
    # the same grasp turned by pi about the approach is the same planar grasp
    T2 = T.copy()
    T2[:3, :2] *= -1
    assert angle_difference(project_grasp(T2, width_m, 0.02, K).angle, 0.7) < 1e-9


def test_rectangle_metric():
    t = PlanarGrasp(50.0, 50.0, 0.2, 30.0, 10.0)
    assert rectangle_iou(t, t) == pytest.approx(1.0, abs=1e-4)
    assert rectangle_match(PlanarGrasp(52.0, 50.0, 0.3, 28.0, 10.0), [t])
    assert not rectangle_match(PlanarGrasp(52.0, 50.0, 0.2 + np.radians(35), 28.0, 10.0), [t])  # angle
    assert not rectangle_match(PlanarGrasp(90.0, 50.0, 0.2, 30.0, 10.0), [t])  # no overlap
    # angles are pi-periodic: -88 deg and +88 deg are 4 deg apart
    assert angle_difference(np.radians(-88), np.radians(88)) == pytest.approx(np.radians(4))
    assert rectangle_match(PlanarGrasp(50.0, 50.0, wrap_angle(0.2 + np.pi), 30.0, 10.0), [t])


def test_depth_check_stops_the_fingers_short_of_what_the_depth_shows():
    from simdata.grasping.depth_check import DepthCheckConfig, grasp_centre_depth, openings, plan_grasp_depth

    gripper, cfg = GripperConfig(), DepthCheckConfig()
    L = gripper.finger_length
    f = K[0, 0] / 0.6  # px per metre at the table
    depth = np.full((240, 320), 0.6, np.float32)  # a table 0.6 m away, seen straight on
    box = (slice(120 - int(0.06 * f), 120 + int(0.06 * f)), slice(160 - int(0.02 * f), 160 + int(0.02 * f)))
    depth[box] = 0.57  # a box 3 cm high, some 4 cm across u and 12 cm along v
    across = PlanarGrasp(160.0, 120.0, 0.0, 0.04 * f, 10.0)  # closing along u: fingers on the table
    z = grasp_centre_depth(depth, across, K, gripper, cfg)
    assert z + L / 2 == pytest.approx(0.6 - cfg.margin_m)  # the fingertips stop above the table
    depth[box] = 0.45  # 15 cm high: the fingertips go 80 % of the pads below its top
    z = grasp_centre_depth(depth, across, K, gripper, cfg)
    assert z + L / 2 == pytest.approx(0.45 + cfg.reach * L)
    along = PlanarGrasp(160.0, 120.0, np.pi / 2, 0.08 * f, 10.0)  # closing along v: 9 cm of box
    assert grasp_centre_depth(depth, along, K, gripper, cfg) is None  # the fingers land on it
    # a neighbour under a finger limits the descent; too high, and the grasp is refused
    depth[box] = 0.57
    neighbour = (slice(110, 130), slice(160 + int(0.048 * f) - 1, 160 + int(0.048 * f) + 2))
    depth[neighbour] = 0.59  # 4.8 cm from the centre, under the fully open finger (4-5 cm)
    z = grasp_centre_depth(depth, across, K, gripper, cfg)
    assert z + L / 2 == pytest.approx(0.59 - cfg.margin_m)
    depth[neighbour] = 0.575
    assert grasp_centre_depth(depth, across, K, gripper, cfg) is None
    # ... unless the fingers open less wide: plan_grasp_depth takes the deepest opening, the
    # widest among equals; here only the narrowest fits: the grasp's width + 2 x open_margin_m
    assert openings(0.04, gripper, cfg) == pytest.approx([0.08, 0.07, 0.06])
    z, opening = plan_grasp_depth(depth, across, K, gripper, cfg)
    width = across.width * 0.57 / K[0, 0]  # its pixels at the surface seen at its centre
    assert opening == pytest.approx(width + 2 * cfg.open_margin_m, rel=1e-6)
    assert z + L / 2 == pytest.approx(0.6 - cfg.margin_m)
    assert grasp_centre_depth(depth, across, K, gripper, cfg, opening_m=opening) == pytest.approx(z)
    # a lower neighbour the open fingers stop on (still executable): a narrower opening that
    # clears it goes deeper and wins
    depth[neighbour] = 0.59
    assert grasp_centre_depth(depth, across, K, gripper, cfg) + L / 2 == pytest.approx(0.59 - cfg.margin_m)
    z, opening = plan_grasp_depth(depth, across, K, gripper, cfg)
    assert opening < 0.08 and z + L / 2 == pytest.approx(0.6 - cfg.margin_m)
    depth[neighbour] = 0.6
    assert plan_grasp_depth(depth, across, K, gripper, cfg)[1] == pytest.approx(0.08)  # room: fully open
    assert grasp_centre_depth(np.zeros((240, 320), np.float32), across, K, gripper, cfg) is None


def test_grasp_trials_lift_the_bodies_the_scene_physics_settled(grasp_dataset):
    """Mass, centre of mass and inertia of the dataset's models are the ones the scene physics
    simulated (the URDFs' here), not the mesh volume at try_grasp's density."""
    from helpers import ASSETS
    from simdata.assets import load_models
    from simdata.physics import PhysicsConfig, mass_properties

    rendered = {m.name: m for m in load_models(str(ASSETS))}
    models = load_dataset_models(grasp_dataset)
    differs = 0
    for m in models.values():
        src = rendered[m.name]
        assert src.mass_kg is not None  # the proxies come with URDF masses
        mass, com, inertia = mass_properties(m, 500.0)
        ref = mass_properties(src, PhysicsConfig().density)
        assert mass == ref[0] and np.array_equal(com, ref[1]) and np.array_equal(inertia, ref[2])
        by_volume = replace(m, mass_kg=None, com_m=None, inertia_diag=None)
        differs += abs(mass_properties(by_volume, 500.0)[0] - mass) > 0.01 * mass
    assert differs >= len(models) // 2  # the volume at 500 kg/m^3 is another body


def test_grasp_trials_collide_with_the_parts_the_scene_physics_settled(grasp_dataset):
    """The dataset keeps each model's collision parts (models/collision/): a trial's bodies are
    the shapes the scene came to rest with, so they lie still before the gripper moves."""
    import pybullet
    from pybullet_utils.bullet_client import BulletClient

    from helpers import ASSETS
    from simdata.assets import load_models
    from simdata.grasping.execute import add_scene_bodies
    from simdata.physics import PhysicsConfig

    rendered = {m.name: m for m in load_models(str(ASSETS))}
    models = load_dataset_models(grasp_dataset)
    for m in models.values():
        assert m.collision_path == grasp_dataset / "models" / "collision" / f"obj_{m.obj_id:06d}.obj"
        assert m.collision_path.read_bytes() == rendered[m.name].collision_path.read_bytes()
        assert m.scale == rendered[m.name].scale

    def motion(models, collision):
        """How far (m) each object of every scene moves in the half second before a trial's
        fingers reach it, built as a trial builds it (simdata.grasping.execute.add_scene_bodies)."""
        out = []
        for scene in sorted((grasp_dataset / "train_pbr").iterdir()):
            client = BulletClient(connection_mode=pybullet.DIRECT)
            try:
                client.setGravity(0, 0, -9.81)
                client.setPhysicsEngineParameter(fixedTimeStep=1 / 240, numSolverIterations=100)
                _, bodies, _ = add_scene_bodies(client, scene_objects(scene, models),
                                                PhysicsConfig(collision=collision))
                start = [np.array(client.getBasePositionAndOrientation(b)[0]) for b in bodies]
                for _ in range(120):
                    client.stepSimulation()
                out += [float(np.linalg.norm(np.array(client.getBasePositionAndOrientation(b)[0]) - p))
                        for b, p in zip(bodies, start)]
            finally:
                client.disconnect()
        return np.array(out)

    recorded = motion(models, "auto")
    from_the_ply = motion(load_dataset_models(grasp_dataset), "vhacd")  # what trials took before
    assert recorded.max() < 0.002  # measured: at most 0.7 mm (VHACD of the PLY: up to 8 mm)
    assert recorded.sum() < from_the_ply.sum()


def test_a_dataset_without_recorded_bodies_says_what_the_trials_lift(grasp_dataset, tmp_path, caplog):
    old = tmp_path / "old"
    shutil.copytree(grasp_dataset / "models", old / "models")
    objects = json.loads((grasp_dataset / "objects.json").read_text())
    for v in objects.values():
        v.pop("physics")
    (old / "objects.json").write_text(json.dumps(objects))
    with caplog.at_level("WARNING", logger="simdata.grasping.labels"):
        models = load_dataset_models(old)
    assert all(m.mass_kg is None for m in models.values())
    assert "no rigid bodies" in caplog.text and "re-render" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="simdata.grasping.labels"):
        load_dataset_models(grasp_dataset)
    assert "no rigid bodies" not in caplog.text


def test_scene_grasps_are_physical_and_seen_where_written(grasp_dataset):
    cfg = json.loads((grasp_dataset / CONFIG_FILE).read_text())
    assert cfg["gripper"]["max_opening"] == pytest.approx(0.08)
    models = load_dataset_models(grasp_dataset)
    n_success = n_rects = 0
    for scene in sorted((grasp_dataset / "train_pbr").iterdir()):
        records = json.loads((scene / "scene_grasps.json").read_text())["grasps"]
        objects = scene_objects(scene, models)
        assert records
        for r in records:
            T = record_pose(r)
            assert np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3), atol=1e-6)
            assert r["width_mm"] <= 80.0 + 1e-6
            assert not r["success"] or r["collision_free"]
            assert r["obj_id"] == objects[r["inst"]][0].obj_id
            # the grasp centre lies inside the object's box at its settled pose
            model, T_wo = objects[r["inst"]]
            p = np.linalg.inv(T_wo) @ np.append(T[:3, 3], 1)
            lo, hi = model.mesh.bounds
            assert np.all(p[:3] >= lo - 0.03) and np.all(p[:3] <= hi + 0.03)
            if r["success"]:
                n_success += 1
                assert T[:3, 2] @ [0, 0, -1] >= np.cos(np.radians(45)) - 1e-9  # approach cone
        cams = json.loads((scene / "scene_camera.json").read_text())
        for im in cams:
            maps, rects = read_view_grasps(scene, int(im))
            assert maps.shape == (4, 240, 320)
            n_rects += len(rects)
            for u, v, a, w, h, inst in rects:
                # each rectangle's centre is on its object's visible mask and painted on the maps
                from simdata.fileio import read_image

                mask = read_image(scene / "mask_visib" / f"{int(im):06d}_{int(inst):06d}.png") > 0
                assert mask[int(round(v)), int(round(u))]
                assert maps[0][int(round(v)), int(round(u))] == 1.0
            assert ((maps[0] > 0) == (maps[3] > 0)).all()
    assert n_success > 0 and n_rects > 0


def unlabelled_copy(dataset, copy):
    """A copy of a labelled dataset without its grasp labels (renders kept)."""
    shutil.copytree(dataset, copy)
    (copy / CONFIG_FILE).unlink()
    for scene in (copy / "train_pbr").iterdir():
        (scene / "scene_grasps.json").unlink()
        shutil.rmtree(scene / "grasps")
    return copy


def test_labels_are_identical_for_the_same_seed_and_any_workers(grasp_dataset, tmp_path):
    copy = unlabelled_copy(grasp_dataset, tmp_path / "ds")
    tot = label_dataset(copy, GraspLabelConfig(candidates=6), workers=2, progress=False)
    assert tot["scenes"] == 2
    for scene in sorted((grasp_dataset / "train_pbr").iterdir()):
        other = copy / "train_pbr" / scene.name
        assert (scene / "scene_grasps.json").read_bytes() == (other / "scene_grasps.json").read_bytes()
        for f in sorted((scene / "grasps").iterdir()):
            assert f.read_bytes() == (other / "grasps" / f.name).read_bytes()
    # a rerun has nothing to do; other settings are refused, naming the file
    assert label_dataset(copy, GraspLabelConfig(candidates=6), progress=False)["skipped"] == 2
    with pytest.raises(SimdataError, match="candidates.*grasps_config.json"):
        label_dataset(copy, GraspLabelConfig(candidates=7), progress=False)
    # a grasps_config.json written before --robustness existed still matches the same options
    old = json.loads((copy / CONFIG_FILE).read_text())
    for key in ("robustness", "perturb_mm", "perturb_deg"):
        del old[key]
    (copy / CONFIG_FILE).write_text(json.dumps(old))
    assert label_dataset(copy, GraspLabelConfig(candidates=6), progress=False)["skipped"] == 2
    # one written before the trials' physics was recorded had the 5 Hz sine shake and 20
    # solver iterations: labelling on with today's is refused, and adapt eval executes its
    # trials as the labels were made
    from adapt.grasping import trial_physics_of

    assert trial_physics_of(copy) == {"shake": "arm", "solver_iterations": 100}
    del old["shake"], old["solver_iterations"]
    (copy / CONFIG_FILE).write_text(json.dumps(old))
    assert trial_physics_of(copy) == {"shake": "sine", "solver_iterations": 20}
    assert trial_physics_of(tmp_path) == {"shake": "arm", "solver_iterations": 100}
    with pytest.raises(SimdataError, match="shake, solver_iterations differ.*grasps_config.json"):
        label_dataset(copy, GraspLabelConfig(candidates=6), progress=False)
    legacy = GraspLabelConfig(candidates=6, shake="sine", solver_iterations=20)
    assert label_dataset(copy, legacy, progress=False)["skipped"] == 2
    with pytest.raises(SimdataError, match="--shake 'fast'"):
        GraspLabelConfig(shake="fast").validate()


def test_mapped_trials_make_the_same_maps_from_fewer_trials(grasp_dataset, tmp_path):
    """--trials mapped simulates only the grasps some view's maps could show: the maps are
    byte-identical to those of every trial, the outcomes it simulated agree, and the others
    are recorded with success null."""
    copy = unlabelled_copy(grasp_dataset, tmp_path / "ds")
    tot = label_dataset(copy, GraspLabelConfig(candidates=6, trials="mapped"), progress=False)
    assert 0 < tot["executed"] < tot["collision_free"]
    skipped = 0
    for scene in sorted((grasp_dataset / "train_pbr").iterdir()):
        other = copy / "train_pbr" / scene.name
        for f in sorted((scene / "grasps").iterdir()):
            assert f.read_bytes() == (other / "grasps" / f.name).read_bytes()
        every = json.loads((scene / "scene_grasps.json").read_text())["grasps"]
        mapped = json.loads((other / "scene_grasps.json").read_text())["grasps"]
        assert [r["t_world_grasp_mm"] for r in every] == [r["t_world_grasp_mm"] for r in mapped]
        for a, b in zip(every, mapped):
            assert a["collision_free"] == b["collision_free"]
            if b["success"] is None:
                assert b["collision_free"]
                skipped += 1
            else:
                assert a["success"] == b["success"]
    assert skipped == tot["collision_free"] - tot["executed"] > 0
    assert json.loads((copy / CONFIG_FILE).read_text())["trials"] == "mapped"
    with pytest.raises(SimdataError, match="--trials 'some'"):
        GraspLabelConfig(trials="some").validate()


def test_perturbed_pose_moves_in_the_gripper_plane_and_turns_about_the_approach():
    rng = np.random.default_rng(0)
    T = np.eye(4)
    T[:3, :3] = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]])  # approach straight down
    T[:3, 3] = [0.1, 0.2, 0.05]
    shifts, turns = [], []
    for _ in range(400):
        P = perturbed_pose(T, rng, 0.004, 10.0)
        assert np.allclose(P[:3, :3].T @ P[:3, :3], np.eye(3), atol=1e-12)
        assert np.allclose(P[:3, 2], T[:3, 2])  # the approach is kept
        d = P[:3, 3] - T[:3, 3]
        assert abs(d @ T[:3, 2]) < 1e-12  # no move along it
        shifts.append(d[:2])
        turns.append(np.degrees(np.arctan2(P[:3, 0] @ T[:3, 1], P[:3, 0] @ T[:3, 0])))
    assert np.std(shifts, axis=0) == pytest.approx([0.004, 0.004], rel=0.15)
    assert np.std(turns) == pytest.approx(10.0, rel=0.15)
    assert perturbed_pose(T, rng, 0.0, 0.0) == pytest.approx(T)


def test_robust_quality_is_the_share_of_perturbed_copies_that_held(grasp_dataset, tmp_path):
    copy = unlabelled_copy(grasp_dataset, tmp_path / "ds")
    tot = label_dataset(copy, GraspLabelConfig(candidates=6, robustness=2), progress=False)
    shares = {1 / 3, 2 / 3, 1.0}
    n_success = 0
    for scene in sorted((grasp_dataset / "train_pbr").iterdir()):
        plain = json.loads((scene / "scene_grasps.json").read_text())["grasps"]
        robust = json.loads((copy / "train_pbr" / scene.name / "scene_grasps.json").read_text())["grasps"]
        # the same candidates and outcomes; successful ones carry the share that held
        assert [{k: v for k, v in r.items() if k != "robustness"} for r in robust] == plain
        for r in robust:
            assert ("robustness" in r) == r["success"]
            if r["success"]:
                n_success += 1
                assert min(abs(r["robustness"] - s) for s in shares) < 1e-9
        for f in sorted((copy / "train_pbr" / scene.name / "grasps").iterdir()):
            maps, rects = read_view_grasps(scene, int(f.stem))  # the plain labels' rectangles
            robust_maps, robust_rects = read_view_grasps(copy / "train_pbr" / scene.name, int(f.stem))
            assert np.array_equal(rects, robust_rects)  # the same truths
            assert np.array_equal(maps[0] > 0, robust_maps[0] > 0)  # painted where they were
            for q in np.unique(robust_maps[0][robust_maps[0] > 0]):
                assert min(abs(q - s) for s in shares) < 1e-3  # float16
    assert n_success and tot["trials"] == sum(len(json.loads((s / "scene_grasps.json").read_text())["grasps"])
                                              for s in (copy / "train_pbr").iterdir()) + 2 * n_success
    # labels made without it are refused for a robustness rerun, naming the setting
    with pytest.raises(SimdataError, match="robustness"):
        label_dataset(grasp_dataset, GraspLabelConfig(candidates=6, robustness=1), progress=False)
    with pytest.raises(SimdataError, match="--robustness"):
        GraspLabelConfig(perturb_mm=2.0).validate()


def test_grasps_cli_refuses_scenes_with_distractors_and_bad_values(tmp_path, grasp_dataset):
    from simdata.cli import main

    copy = tmp_path / "ds"
    shutil.copytree(grasp_dataset, copy)
    scene = copy / "train_pbr" / "000000"
    (scene / "scene_grasps.json").unlink()
    info = json.loads((scene / "scene_simdata.json").read_text())
    info["style"]["distractors_kept"] = 2
    (scene / "scene_simdata.json").write_text(json.dumps(info))
    assert main(["grasps", str(copy), "--candidates", "6", "--no-progress"]) == 2
    assert not (scene / "scene_grasps.json").exists()
    assert main(["grasps", str(copy), "--opening", "2", "--no-progress"]) == 2
    assert main(["grasps", str(tmp_path / "nothing"), "--no-progress"]) == 2


def test_preview_draws_the_grasps(grasp_dataset, tmp_path):
    from simdata.fileio import read_image
    from simdata.preview import contact_sheet

    out = contact_sheet(grasp_dataset, tmp_path / "sheet.png", n=4, width=160)
    sheet = read_image(out)
    # rgb, rgb clean, depth, depth clean, masks, normals, then the rgb with the grasps drawn
    assert sheet.shape[1] == 160 * 7
    rgb, drawn = sheet[:, :160].astype(int), sheet[:, 6 * 160:].astype(int)
    drawn_px = (np.abs(rgb - drawn).sum(-1) > 60)
    drawn_px[:, :80] = False  # the tiles' titles differ
    assert drawn_px.sum() > 50
