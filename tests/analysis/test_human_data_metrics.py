"""Imported fixations are scored as collected ones are: NSS and AUC-Judd against the imported
fixation map equal the platform's metrics on a fixation map built directly from the same fixations,
and pysaliency's where its conventions are the platform's; split-half ceilings exist for them."""
import numpy as np
import pytest

from analysis import metrics
from analysis.human_data import human_maps_build, read_import
from analysis.split_half import ceiling_and_floor, reliability_curve
from tests.analysis.human_data_fixtures import IMAGES, synthetic_fixations, write_csv_import, write_mit_import
from tests.analysis.pysaliency_ref import load

pysaliency = load()  # shims np.trapz = np.trapezoid for pysaliency's ROC (tests only)
ROWS = synthetic_fixations(per=(4, 9), seed=5)


def _direct_fixation_map(key):
    """The fixation map written out: a pixel is fixated when a fixation lies in it (floor of x, y)."""
    width, height = IMAGES[key]
    fixated = np.zeros((height, width), dtype=bool)
    for r in ROWS:
        if r["image"] == key:
            fixated[int(r["y"] // 1), int(r["x"] // 1)] = True
    return fixated


@pytest.fixture(scope="module", params=["fixations-csv", "mit"])
def built(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    root = write_csv_import(root, ROWS) if request.param == "fixations-csv" else write_mit_import(root, ROWS)
    data = read_import(root, request.param, {"sigma_px": 3.0})
    return {m.image.name.rsplit("/", 1)[-1].split(".")[0]: m for m in human_maps_build(data)}


def _model_maps(key, count=4):
    width, height = IMAGES[key]
    rng = np.random.default_rng(11)
    yield rng.random((height, width))
    yield np.round(rng.random((height, width)) * 4)  # many ties
    yield rng.random((height // 2, width // 2))  # another size: resized to the human map's
    yield np.ones((height, width))  # constant: NSS undefined


@pytest.mark.parametrize("key", sorted(IMAGES))
def test_nss_and_auc_judd_equal_the_platform_metrics_on_the_direct_fixation_map(built, key):
    imported = built[key].fixations
    direct = _direct_fixation_map(key)
    assert np.array_equal(imported > 0, direct)
    for p in _model_maps(key):
        for metric in (metrics.nss, metrics.auc_judd):
            a, b = metric(p, imported), metric(p, direct)
            assert a == b or (np.isnan(a) and np.isnan(b)), (metric.__name__, a, b)
    assert np.isnan(metrics.nss(np.ones_like(direct, dtype=float), imported))


@pytest.mark.parametrize("key", sorted(IMAGES))
def test_auc_judd_equals_pysaliency_and_nss_differs_only_by_its_stated_conventions(built, key):
    """AUC-Judd: pysaliency's general_roc(P[F], P[~F], judd=1) is the platform's definition. NSS:
    pysaliency averages over fixations (a refixated pixel counts again) with the population std
    (ddof 0); the platform averages over fixated pixels, each once, with the sample std (ddof 1).
    Over the distinct fixated pixels the two differ by exactly sqrt((n - 1) / n)."""
    f = built[key].fixations > 0
    for p in list(_model_maps(key))[:2]:
        expected_auc = pysaliency.roc.general_roc(p[f].astype(float), p[~f].astype(float), judd=1)[0]
        assert metrics.auc_judd(p, built[key].fixations) == pytest.approx(expected_auc, abs=1e-12)
        ys, xs = np.nonzero(f)
        per_pixel = pysaliency.metrics.NSS(p, xs, ys).mean()
        assert metrics.nss(p, f) == pytest.approx(per_pixel * np.sqrt((p.size - 1) / p.size), abs=1e-12)
        all_x = np.array([int(r["x"]) for r in ROWS if r["image"] == key])
        all_y = np.array([int(r["y"]) for r in ROWS if r["image"] == key])
        per_fixation = pysaliency.metrics.NSS(p, all_x, all_y).mean()
        assert len(all_x) > f.sum()  # refixations exist, so the conventions give different numbers here
        assert metrics.nss(p, f) != pytest.approx(per_fixation * np.sqrt((p.size - 1) / p.size), abs=1e-6)


def test_imported_fixations_have_split_half_ceilings_and_reliability_curves(built):
    own, other = built["street"].stack(), built["beach"].stack()
    assert own.n == 4 and own.fixations is not None
    result = ceiling_and_floor(own, [other], repetitions=6, rng=np.random.default_rng(0))
    for metric in ("pcc", "nss", "auc_judd"):
        summary = result.summary(metric)
        assert np.isfinite(summary["ceiling"]) and np.isfinite(summary["floor"])
    curve = reliability_curve(own, repetitions=3, rng=np.random.default_rng(0))
    assert [k for k, *_ in curve["pcc"]] == [1, 2]
