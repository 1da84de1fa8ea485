"""Data drift across recorded versions, from stored profiles, checked against scipy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from conftest import run_cli
from nbtrack import drift
from nbtrack.client import Client
from nbtrack.driftsketch import EXACT_DISTINCT
from nbtrack.hashing import StatCache
from nbtrack.profile import profile_frame
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
from nbtrack.versioning import version_path


def _reference_psi(ref: np.ndarray, cur: np.ndarray, edges: list[float]) -> float:
    """PSI straight from the raw samples, with the given right-closed bin edges."""
    e = np.asarray(edges)
    p = np.diff(np.concatenate([[0], np.searchsorted(np.sort(ref), e, "right") / len(ref), [1]]))
    q = np.diff(np.concatenate([[0], np.searchsorted(np.sort(cur), e, "right") / len(cur), [1]]))
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def _column(ref: np.ndarray, cur: np.ndarray) -> tuple[drift.ColumnDrift, list[float]]:
    pa = profile_frame(pd.DataFrame({"x": ref}))
    pb = profile_frame(pd.DataFrame({"x": cur}))
    da = drift.distribution(pa["drift"]["columns"]["x"])
    db = drift.distribution(pb["drift"]["columns"]["x"])
    assert da is not None and db is not None
    _, edges = drift.psi(da, db)
    return drift.compare(pa, pb).columns[0], edges


def test_exact_statistics_match_scipy_and_a_direct_psi_on_known_shifts():
    rng = np.random.default_rng(7)
    # given samples with at most 1,000 distinct values (kept exactly in the profile)
    ref = np.round(rng.normal(0.0, 1.0, 4000), 2)
    for cur in (
        np.round(rng.normal(0.25, 1.0, 3000), 2),  # a shift of the mean
        np.round(rng.normal(0.0, 1.6, 3500), 2),  # a wider spread
        ref.copy(),  # no change at all
    ):
        assert len(np.unique(cur)) <= EXACT_DISTINCT
        col, edges = _column(ref, cur)
        # then KS and PSI are those of the raw data, to 1e-6
        assert col.exact
        assert col.ks == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-6)
        en = len(ref) * len(cur) / (len(ref) + len(cur))
        assert col.ks_p == pytest.approx(stats.kstwobign.sf(np.sqrt(en) * col.ks), abs=1e-6)
        assert np.allclose(edges, np.quantile(ref, np.arange(1, 10) / 10, method="inverted_cdf"))
        assert col.psi == pytest.approx(_reference_psi(ref, cur, edges), abs=1e-6)
    # and identical versions have zero drift
    assert col.ks == 0 and col.psi == 0 and col.ks_p == 1 and not col.flags


def test_continuous_columns_on_the_grid_stay_close_to_scipy():
    rng = np.random.default_rng(3)
    ref, cur = rng.lognormal(0, 1, 200_000), rng.lognormal(0.05, 1, 150_000)
    col, edges = _column(ref, cur)
    assert col.exact is False
    exact_d = stats.ks_2samp(ref, cur).statistic
    # the KS statistic on the grid never exceeds the true one and misses it by little
    assert exact_d - 0.01 <= col.ks <= exact_d + 1e-12
    # PSI on grid edges is exact for those edges
    assert col.psi == pytest.approx(_reference_psi(ref, cur, edges), abs=1e-6)
    assert "ks" in col.flags and "psi" not in col.flags  # a small shift on a large sample


def test_missing_values_change_the_null_rate_not_the_distribution():
    rng = np.random.default_rng(5)
    ref = rng.lognormal(10, 0.5, 5000)  # continuous: kept on the grid
    cur = ref.copy()
    cur[:1000] = np.nan  # a fifth of the rows lost their value
    col, _ = _column(ref, cur)
    kept = cur[~np.isnan(cur)]
    assert col.ks == pytest.approx(stats.ks_2samp(ref, kept).statistic, abs=0.01)
    assert col.flags == ["nulls"] and col.null == pytest.approx(0.2)


def test_categorical_columns_use_jensen_shannon_and_mixed_types_are_named():
    ref = pd.DataFrame({"city": ["Paris"] * 50 + ["Lyon"] * 30 + ["Nice"] * 20})
    cur = pd.DataFrame({"city": ["Paris"] * 20 + ["Lyon"] * 30 + ["Brest"] * 50})
    col = drift.compare(profile_frame(ref), profile_frame(cur)).columns[0]
    expected = jensenshannon([50, 30, 20, 0], [20, 30, 0, 50], base=2)
    assert col.js == pytest.approx(expected, abs=1e-9) and col.flags == ["js", "chi2"]
    mixed = pd.DataFrame({"m": pd.Series([1, "a", 2.5, None], dtype=object)})
    col = drift.compare(profile_frame(mixed), profile_frame(mixed)).columns[0]
    assert col.kind == "categorical" and col.js == 0 and "mixed" in (col.note or "")


def test_categorical_chi_square_matches_scipy_on_a_real_shift_and_not_on_resampling():
    rng = np.random.default_rng(11)
    plans = ["basic", "plus", "pro", "team"]
    ref = rng.choice(plans, 20_000, p=[0.4, 0.3, 0.2, 0.1])
    # given a new version where customers moved from basic to pro (a real shift)
    shifted = rng.choice(plans, 15_000, p=[0.34, 0.3, 0.26, 0.1])
    # and one drawn again from the same mix (no shift)
    same = rng.choice(plans, 15_000, p=[0.4, 0.3, 0.2, 0.1])
    for cur, drifted in ((shifted, True), (same, False)):
        col = drift.compare(
            profile_frame(pd.DataFrame({"plan": ref})), profile_frame(pd.DataFrame({"plan": cur}))
        ).columns[0]
        table = [[int((ref == p).sum()) for p in plans], [int((cur == p).sum()) for p in plans]]
        expected = stats.chi2_contingency(table, correction=False)
        # then the statistic and p-value are scipy's (no continuity correction)
        assert col.chi2 == pytest.approx(expected.statistic, rel=1e-9)
        assert col.chi2_p == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)
        # and only the real shift is flagged
        assert ("chi2" in col.flags) is drifted
        assert ("chi-square" in col.describe(drift.Thresholds())) is drifted


def test_chi_square_p_values_follow_scipy_across_degrees_of_freedom():
    for x in (1e-3, 0.5, 3.0, 7.9, 40.0, 600.0):
        for dof in (1, 2, 5, 30, 999):
            assert drift.chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), abs=1e-12)


def test_many_versions_in_one_pass_equal_the_pairwise_comparisons():
    from nbtrack.driftbatch import compare_many

    rng = np.random.default_rng(2)
    # given versions mixing exact columns, grid columns and a column whose kind changes
    frames = []
    for i in range(6):
        frames.append(
            pd.DataFrame({
                "exact": np.round(rng.normal(0.1 * i, 1, 3000), 1),
                "grid": rng.lognormal(0.03 * i, 1, 3000),
                "switch": rng.lognormal(0, 1, 3000) if i % 2 else rng.integers(0, 5, 3000),
                "empty": np.full(3000, np.nan),
                "cat": rng.choice(["a", "b", "c"], 3000),
            })
        )  # fmt: skip
    profiles = [profile_frame(f) for f in frames]
    # when all are compared with the first in one pass
    batched = compare_many(profiles[0], profiles[1:])
    # then every number is the pairwise one
    for cur, got in zip(profiles[1:], batched, strict=True):
        want = drift.compare(profiles[0], cur)
        assert [c.name for c in got.columns] == [c.name for c in want.columns]
        for a, b in zip(got.columns, want.columns, strict=True):
            assert a.flags == b.flags and a.exact == b.exact
            for stat in ("ks", "ks_p", "psi", "js", "chi2"):
                x, y = getattr(a, stat), getattr(b, stat)
                assert (x is None and y is None) or x == pytest.approx(y, abs=1e-12)


# ---------------------------------------------------------------- through the store and CLI
@pytest.fixture
def client(project_dir: Path) -> Client:
    (project_dir / ".nbtrack").mkdir()
    return Client(resolve_project(project_dir))


def _record(client: Client, path: str, role: str = "input") -> str:
    v = version_path(
        client.project,
        path,
        role,
        cache=client.cache,
        stat_cache=StatCache.for_folder(client.project.folder),
    )
    w = RunWriter.start(client.project, name="load")
    w.log_data([v])
    w.finish()
    w.wait()
    return w.run_id


def _write(path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(path, index=False)


def test_drift_of_a_path_across_versions_in_time_order(client: Client) -> None:
    rng = np.random.default_rng(11)
    data = client.project.root / "train.csv"
    base = pd.DataFrame({"age": rng.integers(20, 60, 500), "city": rng.choice(["a", "b"], 500)})
    _write(data, base)
    first = _record(client, "train.csv")
    shifted = base.assign(age=base.age + 15, score=1.0)
    _write(data, shifted)  # the ages moved and a column appeared
    second = _record(client, "train.csv")
    _write(data, base)
    third = _record(client, "train.csv")  # back to the first content
    r = run_cli("drift", "train.csv", cwd=client.project.root)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(
        f"drift of train.csv: 2 version(s) in 3 run(s), reference {first[:8]}"
    )
    rows = [ln for ln in lines if ln.startswith(second[:8])]
    assert any("score" in ln and "column added" in ln for ln in rows)
    assert any(ln.split()[1] == "age" and "psi, ks" in ln for ln in rows)
    assert lines[-1] == "1 of 1 version(s) drifted from the reference"
    # the third run saw the first content again: one version seen by two runs
    report = json.loads(run_cli("drift", "train.csv", "--json", cwd=client.project.root).stdout)
    assert [v["runs"] for v in report["versions"]] == [2, 1]
    assert third not in {v["run_id"] for v in report["versions"]}
    # against the second version as reference, the first drifted the other way
    r = run_cli("drift", "train.csv", "--ref", second, "--json", cwd=client.project.root)
    ref = json.loads(r.stdout)
    assert [v["reference"] for v in ref["versions"]] == [False, True]
    assert ref["versions"][0]["drift"]["columns_removed"] == ["score"]


def test_drift_reads_only_profiles_once_they_exist(client: Client) -> None:
    data = client.project.root / "t.parquet"
    for shift in (0, 0, 50):
        pd.DataFrame({"x": np.arange(100.0) + shift}).to_parquet(data)
        _record(client, "t.parquet")
    assert run_cli("drift", "t.parquet", cwd=client.project.root).returncode == 0
    # when every byte of every version is gone, the stored profiles still answer
    shutil.rmtree(client.project.folder / "cache")
    data.unlink()
    r = run_cli("drift", "t.parquet", "--all", cwd=client.project.root)
    assert r.returncode == 0, r.stderr
    assert "psi" in r.stdout.splitlines()[-2]


def test_two_runs_compare_their_inputs_and_the_diff_shows_the_flags(client: Client) -> None:
    data = client.project.root / "in.csv"
    _write(data, pd.DataFrame({"v": np.arange(300) % 7}))
    a = _record(client, "in.csv")
    _write(data, pd.DataFrame({"v": np.arange(300) % 7 + 4}))
    b = _record(client, "in.csv")
    r = run_cli("drift", a, b, cwd=client.project.root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"drift of the inputs of {b[:8]} against {a[:8]}")
    assert "psi, ks" in r.stdout
    r = run_cli("diff", a, b, cwd=client.project.root)
    assert "drift: v: PSI" in r.stdout


@pytest.mark.parametrize(
    "files, message",
    [
        ({"notes.txt": ["a\n", "b\n"]}, "not a table"),
        ({"one.csv": ["x\n1\n"]}, "one recorded version"),
        ({}, "no run recorded"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(client: Client, files, message) -> None:
    target = "missing.csv"
    for name, contents in files.items():
        target = name
        for text in contents:
            (client.project.root / name).write_text(text)
            _record(client, name)
    r = run_cli("drift", target, cwd=client.project.root)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_summary_alerts_when_an_input_drifted_since_the_previous_run(kernel, project_dir):
    cell = "%%track load --no-system\nimport pandas as pd\nframe = pd.read_csv('in.csv')"
    data = project_dir / "in.csv"
    _write(data, pd.DataFrame({"v": np.arange(400) % 9, "k": ["a", "b"] * 200}))
    first = kernel.ok(cell)
    assert "alert" not in first.text
    # when the same cell reads a version whose values moved, the summary says so
    _write(data, pd.DataFrame({"v": np.arange(400) % 9 + 5, "k": ["a", "b"] * 200}))
    second = kernel.ok(cell)
    (alert,) = [ln for ln in second.text.splitlines() if ln.strip().startswith("alert:")]
    assert "input in.csv drifted since" in alert and "v: PSI" in alert and "k:" not in alert
    # and a version that moved within the thresholds raises no alert
    _write(data, pd.DataFrame({"v": np.arange(401) % 9 + 5, "k": ["a", "b"] * 200 + ["a"]}))
    assert "alert" not in kernel.ok(cell).text
    # the same report as a line magic; a gate too (these runs logged no metric)
    shown = kernel.ok("%track drift in.csv")
    assert "drift of in.csv: 3 version(s) in 3 run(s)" in shown.text and "psi, ks" in shown.text
    gate = kernel.run("%track check 'acc > 0.5'")
    assert gate.ename == "UsageError" and "the run has no metric 'acc'" in gate.text


def test_folders_of_tables_and_logged_dataframes_drift_too(client: Client) -> None:
    from nbtrack.versioning import version_dataframe

    parts = client.project.root / "parts"
    parts.mkdir()
    (parts / "readme.txt").write_text("not a table")
    for shift in (0, 30):
        for name in ("a.csv", "b.csv"):
            frame = pd.DataFrame({"x": np.arange(200) % 11 + (shift if name == "b.csv" else 0)})
            _write(parts / name, frame)
        _record(client, "parts")
        # and a DataFrame logged under a name, as nbtrack.log_dataset does
        version, profile = version_dataframe(pd.DataFrame({"y": np.arange(50) + shift}), "feats")
        w = RunWriter.start(client.project, name="features")
        w.log_data([version], {version.hash: profile})
        w.finish()
        w.wait()
    folder = json.loads(run_cli("drift", "parts", "--json", cwd=client.project.root).stdout)
    # each table on its own (not the .txt): a.csv never changed, b.csv drifted
    assert [(v["path"], v["reference"]) for v in folder["versions"]] == [
        ("parts/a.csv", True),
        ("parts/b.csv", True),
        ("parts/b.csv", False),
    ]
    assert folder["versions"][2]["drift"]["drifted"] == ["x"]
    text = run_cli("drift", "parts", cwd=client.project.root).stdout
    assert "parts/a.csv" in text and "one version" in text
    frame = json.loads(run_cli("drift", "feats", "--json", cwd=client.project.root).stdout)
    assert frame["versions"][1]["drift"]["drifted"] == ["y"]
