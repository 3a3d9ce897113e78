"""The report figures' labels: only the parameters that differ from a method's defaults."""
from analysis.figures import params_changed
from analysis.report_tables import params_label
from explain.methods import METHODS


def test_bar_labels_keep_only_the_parameters_that_differ_from_the_defaults():
    occlusion = METHODS["occlusion"].defaults
    resolved = METHODS["occlusion"].params_resolve({"window": 32, "stride": 16})
    assert params_changed(params_label(resolved), occlusion) == "stride=16, window=32"
    assert params_changed(params_label(METHODS["fem"].params_resolve({})), METHODS["fem"].defaults) == ""
    assert params_changed("default", {}) == ""
    assert params_changed('layer="features"', {}) == 'layer="features"'  # no defaults known: all shown
