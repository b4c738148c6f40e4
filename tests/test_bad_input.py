"""User mistakes raise the package's own errors, with one sentence naming the fix."""

import numpy as np
import pytest
import sympy as sp

import bea
from bea import BeaError, BeaTypeError, BeaValueError, TraceError, rules
from bea._core._scalars import read_float


def derive(fn, order=1, **kw):
    return bea.modified_equation(fn, order, **kw)


def test_errors_are_value_or_type_errors():
    assert issubclass(BeaValueError, ValueError) and issubclass(BeaValueError, BeaError)
    assert issubclass(BeaTypeError, TypeError) and issubclass(TraceError, BeaValueError)


@pytest.mark.parametrize("order", [-1, -5])
def test_negative_order(order):
    with pytest.raises(BeaValueError, match="must be an integer >= 0"):
        derive(rules.gd, order)


def test_non_integer_order():
    with pytest.raises(BeaTypeError, match="integer"):
        derive(rules.gd, 1.5)


def test_tree_budget_is_enforced_unless_forced():
    with pytest.raises(BeaValueError, match=r"needs \d+ trees.*force=True"):
        derive(rules.sgd(4), 9)


def test_python_float_is_read_as_its_shortest_repr():
    # a user writes 0.9: it means 9/10, not the double 0.9000000000000000222...
    def rule(theta, h, grad):
        return theta - 0.9 * h * grad("E", theta)

    with pytest.warns(bea.FloatReadExactly, match=r"0\.9.*9/10"):
        read_float(0.9)  # the warning is given once per value
    with pytest.warns(bea.FloatReadExactly, match=r"0\.9.*9/10") as notes:
        meq = derive(rule)
    assert notes[0].filename == __file__  # the note points at the rule's own line
    assert meq.coefficient("E") == sp.Rational(-9, 10)
    with pytest.warns(bea.FloatReadExactly, match=r"0\.5.*1/2"):
        assert rules.heavy_ball.with_params(beta=0.5).params == (("beta", sp.Rational(1, 2)),)


def test_float_that_would_make_the_result_inexact_is_refused():
    def rule(theta, h, grad):  # 30 digits of precision: not a Python float the user wrote
        return theta - sp.Float("0.1", 30) * h * grad("E", theta)

    with pytest.raises(BeaTypeError, match=r"float 0\.1.*sympy\.Rational"):
        derive(rule)


def test_normalised_step_names_the_operation_and_line():
    def normalised_sam(theta, h, grad):
        g = grad("E", theta)
        return theta - h * grad("E", theta + h * g / np.linalg.norm(g))

    with pytest.raises(TraceError, match=r"numpy.norm.*test_bad_input\.py:\d+"):
        derive(normalised_sam)


def test_sqrt_is_refused():
    def rule(theta, h, grad):
        return theta - h * np.sqrt(grad("E", theta))

    with pytest.raises(TraceError, match=r"numpy\.sqrt"):
        derive(rule)


def test_products_of_traced_values_are_refused():
    def rule(theta, h, grad):
        g = grad("E", theta)
        return theta - h * g * g

    with pytest.raises(TraceError, match="product of two traced values"):
        derive(rule)


def test_branching_on_the_state_is_not_explicit():
    def implicit(theta, h, grad):
        new = theta
        while new - theta:  # fixed-point iteration: not an explicit rule
            new = theta - h * grad("E", new)
        return new

    with pytest.raises(TraceError, match="explicit"):
        derive(implicit)


def test_oracle_value_must_be_scaled_by_h():
    def rule(theta, h, grad):
        return theta - h * grad("E", theta + grad("E", theta))

    with pytest.raises(TraceError, match="not scaled by the learning rate h"):
        derive(rule)


def test_oracle_at_a_scaled_state():
    def rule(theta, h, grad):
        return theta - h * grad("E", 2 * theta)

    with pytest.raises(TraceError, match="state plus learning-rate-sized steps"):
        derive(rule)


def test_result_must_be_the_state_plus_steps():
    def rule(theta, h, grad):
        return -h * grad("E", theta)

    with pytest.raises(TraceError, match="returns 0 times theta"):
        derive(rule)


def test_weight_decay_scaling_the_state_by_h():
    def rule(theta, h, grad):
        return theta - h * (grad("E", theta) + sp.Rational(1, 10) * theta)

    with pytest.raises(TraceError, match="gradient of a loss"):
        derive(rule)


def test_division_by_h_is_refused():
    def rule(theta, h, grad):
        return theta - h * grad("E", theta) / h * h

    with pytest.raises(TraceError, match="divides by h"):
        derive(rule)


def test_division_by_a_parameter_uses_the_fraction_field():
    beta = sp.Symbol("beta")

    def rule(theta, h, grad):
        return theta - h / beta * grad("E", theta)

    meq = derive(rule)
    assert sp.simplify(meq.coefficient("E[E]") + 1 / (2 * beta**2)) == 0


def test_unknown_oracle_name_in_a_tree():
    meq = derive(rules.gd, 2)
    with pytest.raises(BeaValueError, match="never calls; its oracles are E"):
        meq.coefficient("F[E]")
    with pytest.raises(BeaValueError, match="derive to order >= 3"):
        meq.coefficient("E[E[E[E]]]")


def test_two_player_blocks_must_match():
    @bea.rule(blocks=("phi", "theta"))
    def swapped(state, h, field):
        phi, theta = state
        return theta + h * field("g", state), phi + h * field("f", state)

    with pytest.raises(TraceError, match="order"):
        derive(swapped)


def test_single_block_rule_cannot_unpack_the_state():
    def rule(state, h, field):
        phi, _theta = state
        return phi

    with pytest.raises(TraceError, match="declare"):
        derive(rule)


def test_oracle_name_must_be_an_identifier():
    def rule(theta, h, grad):
        return theta - h * grad("E + 1", theta)

    with pytest.raises(BeaValueError, match="identifier"):
        derive(rule)

    def rule2(theta, h, grad):
        return theta - h * grad(3, theta)

    with pytest.raises(BeaTypeError, match="must be a string"):
        derive(rule2)


def test_strings_are_never_sympified():
    # a string reaching sympify would run code: times and expressions must be exact objects
    payload = '__import__("os").system("echo pwned") or h'
    with pytest.raises(BeaTypeError, match="exact SymPy expression"):
        bea.rule(rules.gd.update, time=payload)
    with pytest.raises(BeaTypeError, match="exact SymPy expression"):
        derive(rules.zero_sum_simultaneous, convention="per_player", player_times=(payload, "h"))
    with pytest.raises(BeaTypeError, match="SymPy expression"):
        bea.concrete_field(derive(rules.gd), [sp.Symbol("x")], losses={"E": "x**2"})
    with pytest.raises(BeaTypeError, match="exact"):
        bea.recognise_generating_function(["-1", "-1/2"])
    with pytest.raises(BeaTypeError, match="exact SymPy expression"):
        bea.rule(rules.gd.update, time=sp.Float("0.5", 30) * bea.H)
    # a Python float is read as its shortest repr, exactly
    with pytest.warns(bea.FloatReadExactly):
        assert bea.rule(rules.gd.update, time=0.25 * bea.H).time == bea.H / 4


def test_not_a_rule():
    with pytest.raises(BeaTypeError, match="not an update function"):
        derive(42)


def test_unknown_rule_parameter_lists_valid_ones():
    with pytest.raises(BeaValueError, match="alpha, lambda, m, k"):
        rules.alternating.with_params(beta=1)
    with pytest.raises(BeaValueError, match="must be an integer >= 1"):
        rules.sgd(0)
    with pytest.raises(BeaTypeError, match="exact"):
        rules.simultaneous.with_params(alpha=sp.Float("0.5", 30))
    with pytest.warns(bea.FloatReadExactly, match=r"0\.5.*1/2"):
        alpha = dict(rules.simultaneous.with_params(alpha=0.5).params)["alpha"]
    assert alpha == sp.Rational(1, 2)


def test_non_explicit_tableau():
    with pytest.raises(BeaValueError, match="explicit"):
        rules.runge_kutta([[1, 0], [0, 0]], [1, 0])


def test_unknown_notation():
    meq = derive(rules.euler)
    with pytest.raises(BeaValueError, match="elementary"):
        meq.text("gradient")
    with pytest.raises(BeaValueError, match="notation"):
        meq.text("fancy")


def test_a_rule_called_with_parameters_points_to_with_params():
    # bea.rules.rmsprop(rho=2) raised Python's "missing 2 required positional arguments"
    with pytest.raises(bea.BeaTypeError, match=r"rule.with_params"):
        bea.rules.rmsprop(rho=2)


def test_a_symbolic_time_joins_the_coefficient_domain():
    # time=T*h raised CoercionFailed: T was not in the domain the logarithm divides in
    T = sp.Symbol("T")
    meq = bea.modified_equation(
        bea.rule(lambda t, h, grad: t - h * grad("E", t), time=T * bea.H), 1
    )
    # the flow over T h of -grad E / T - h/(2T) Hess grad E matches one Euler step
    assert sp.simplify(meq.coefficient("E") + 1 / T) == 0
    assert sp.simplify(meq.coefficient("E[E]") + 1 / (2 * T)) == 0


def test_a_required_keyword_only_argument_is_named():
    # Python's "missing 1 required keyword-only argument" came out raw
    def scaled(theta, h, grad, *, scale):
        return theta - scale * h * grad("E", theta)

    with pytest.raises(BeaTypeError, match=r"keyword-only argument 'scale'.*functools\.partial"):
        derive(scaled)

    def with_default(theta, h, *, grad, scale=1):
        return theta - scale * h * grad("E", theta)

    assert derive(with_default).coefficient("E") == -1


def test_a_rule_that_recurses_without_end_is_one_sentence():
    def forever(theta, h, grad):
        return forever(theta, h, grad)

    with pytest.raises(BeaValueError, match=r"recursion limit at .*`return forever\(theta"):
        derive(forever)


def test_an_integer_of_thousands_of_digits_is_refused_before_printing():
    # the derivation went through; printing it raised "Exceeds the limit (4300 digits)"
    def huge(theta, h, grad):
        return theta - 10**5000 * h * grad("E", theta)

    with pytest.raises(BeaValueError, match="about 5001 digits, above the limit of 1000"):
        derive(huge)
    with pytest.raises(BeaValueError, match="rho holds a number of about 1201 digits"):
        rules.sam.with_params(rho=sp.Rational(1, 10**1200))
    assert derive(lambda theta, h, grad: theta - 10**900 * h * grad("E", theta)).coefficient(
        "E"
    ) == -(10**900)


def test_hashing_a_traced_value_is_a_trace_error():
    def hashing(theta, h, grad):
        g = grad("E", theta)
        return theta - h * {g: 1}[g] * g

    # Python's "unhashable type: 'Traced'" came out raw
    with pytest.raises(TraceError, match=r"hashing \(a set, a dict key, hash\(\)\) .*at "):
        derive(hashing)


def test_symbol_h_in_a_rule_is_the_learning_rate():
    """`sp.Symbol("h")` is `bea.H` (SymPy identifies symbols by name and assumptions):
    a rule that writes it gets gradient descent's equation, not a parameter h, and
    `--param h=...` is refused (see `bea.H`)."""

    def written_with_symbol(theta, h, grad):
        return theta - sp.Symbol("h") * grad("E", theta)

    a, b = derive(written_with_symbol, 2), derive(rules.gd, 2)
    assert [(t, k, a.domain.to_sympy(c)) for t, k, c in a.terms] == [
        (t, k, b.domain.to_sympy(c)) for t, k, c in b.terms
    ]
    assert len(a.terms) == 4  # E, E[E], E[E,E], E[E[E]] (Hairer, Lubich and Wanner, IX.1)
