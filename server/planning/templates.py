"""Push templates: Jinja in a bounded sandbox, checked when the merchant saves them.

A merchant's template runs in the web process (preview, save) and in the planners, so it must
not be able to take the process's memory or time. ``PushEnvironment`` bounds both:

* **Values.** No operation a template can run builds a string or list longer than
  ``MAX_VALUE`` (characters or items): ``*``, ``+``, ``~``, ``%``, ``str.format``, calls,
  filters and template blocks (macros, ``{% set %}`` blocks) are checked, and the ones whose
  size does not follow from their inputs (``'x' * n``, padding widths, ``replace``, ``join``)
  are refused *before* they compute. Integers stay under ``MAX_INT_BITS``; ``range()``
  gives at most ``MAX_RANGE`` items; format widths and precisions are at most ``MAX_VALUE``.
  Lists, dicts and sets cannot be changed in place (``ImmutableSandboxedEnvironment``).
* **Work.** Every loop iteration and every call (macros, methods, ``range()``) takes one
  step from a budget of ``MAX_STEPS`` per render.
* **Output.** Rendering goes through ``generate()`` and stops once the output passes
  ``MAX_OUTPUT_BYTES`` (UTF-8).

**Fallbacks.** ``{{ first_name | default("there") }}`` (or ``d``) prints the fallback when the
variable is missing, ``None`` or blank text: the planners pass an anonymous subscriber's name as
``""``, which Jinja's own ``default`` would print as is. ``unguarded_variables`` names the
variables a template prints without a fallback or a condition, for the preview's warnings.

Going past a bound raises ``TemplateLimitError``. Any error a template can raise while it is
compiled or rendered is in ``RENDER_ERRORS``: ``validate`` turns them into a 422
``invalid_template`` naming the field; the planners log them and fall back.
"""
from __future__ import annotations

import contextvars
import functools
import re
import string
from collections.abc import Iterable, Iterator
from typing import Any

from jinja2 import TemplateError, Undefined, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment

from server.core.errors import Invalid

# Texts a template may use; the preview and the save-time check render with these.
SAMPLE_CONTEXT: dict[str, Any] = {
    "shop_name": "Demo Shop",
    "shop_url": "https://shop.example/",
    "first_name": "Alex",
    "product_title": "Linen Shirt",
    "product_price": "$49.00",
    "old_price": "$59.00",
    "product_url": "https://shop.example/products/linen-shirt",
    "product_image": "https://shop.example/img/linen-shirt.jpg",
    "cart_total": "$98.00",
    "item_count": 2,
    "checkout_url": "https://shop.example/checkout/abc",
    "cart_url": "https://shop.example/checkout/abc",
    "currency": "USD",
    "order_id": "1001",
    "order_total": "$98.00",
    "tracking_url": "https://carrier.example/track/1Z999",
    "carrier": "UPS",
    "coupon": "SAVE10",
}

MAX_TEMPLATE_CHARS = 2000  # the source of one template
MAX_OUTPUT_BYTES = 4096  # what one render may produce (a push shows 120 + 400 characters)
MAX_VALUE = 4096  # the longest string or list (characters, items) any operation may build
MAX_INT_BITS = 4096  # the largest integer (about 1,233 decimal digits)
MAX_RANGE = 100  # items one range() may give
MAX_STEPS = 1000  # loop iterations plus calls in one render


class TemplateLimitError(TemplateError):
    """A template went past one of the bounds above."""


# What compiling or rendering a merchant's template may raise (a TemplateLimitError, a
# SecurityError and a syntax error are TemplateErrors; the rest come from the operations).
RENDER_ERRORS: tuple[type[BaseException], ...] = (
    TemplateError, ArithmeticError, LookupError, MemoryError, RecursionError, TypeError, ValueError,
    AttributeError,
)

_steps_left: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("template_steps", default=None)

_SEQUENCES = (str, list, tuple)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")
_FORMAT_SPEC_NUMBERS = re.compile(r"(\d+)")
_PADDING_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs"}
_WIDTH_FILTERS = {"center", "indent", "batch", "slice", "tojson", "wordwrap"}


def _limit(message: str) -> TemplateLimitError:
    return TemplateLimitError(f"template limit: {message}")


def _step(count: int = 1) -> None:
    steps = _steps_left.get()
    if steps is None:
        return  # compile-time constant folding; every render sets a budget
    steps[0] -= count
    if steps[0] < 0:
        raise _limit(f"more than {MAX_STEPS} loop iterations and calls")


def _check_size(value: Any) -> Any:
    """``value`` itself, if it is not a string, list or int past the bounds."""
    if isinstance(value, (str, list, tuple, dict, set, frozenset)) and len(value) > MAX_VALUE:
        raise _limit(f"a value longer than {MAX_VALUE}")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise _limit(f"a number larger than {MAX_INT_BITS} bits")
    return value


def _check_width(width: Any) -> None:
    if isinstance(width, int) and not isinstance(width, bool) and width > MAX_VALUE:
        raise _limit(f"a width over {MAX_VALUE}")


def _check_percent_format(fmt: str) -> None:
    """``'%10.2f' % x``: no ``*`` widths, no width or precision over the bound."""
    for match in _PERCENT_SPEC.finditer(fmt):
        for part in match.groups():
            if part == "*":
                raise _limit("'*' widths are not allowed in % formats")
            if part:
                _check_width(int(part))


def _check_str_format(fmt: str) -> None:
    """``'{:>10}'.format(x)``: no nested ``{}`` in a spec, no width or precision over the bound."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise TemplateLimitError(f"bad format string: {exc}") from None
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec:
            raise _limit("nested {} in a format spec is not allowed")
        for number in _FORMAT_SPEC_NUMBERS.findall(spec):
            _check_width(int(number))


def _projected_replace(text: str, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(old, str) and isinstance(new, str):
        hits = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        if len(text) + hits * (len(new) - len(old)) > MAX_VALUE:
            raise _limit(f"replace() would build more than {MAX_VALUE} characters")


def _projected_join(separator: Any, items: Any) -> None:
    if isinstance(separator, str) and isinstance(items, _SEQUENCES + (dict, set, frozenset)):
        if len(separator) * max(len(items) - 1, 0) > MAX_VALUE:
            raise _limit(f"join() would build more than {MAX_VALUE} characters")


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise _limit(f"range() of more than {MAX_RANGE} items")
    return rng


def _bounded_join(parts: Iterable[Any]) -> str:
    """``"".join`` for the template's own buffers (macro bodies, ``{% set %}`` blocks)."""
    texts, total = [], 0
    for part in parts:
        text = str(part)
        total += len(text)
        if total > MAX_VALUE:
            raise _limit(f"a value longer than {MAX_VALUE}")
        texts.append(text)
    return "".join(texts)


def _fallback(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """The ``default`` filter of push templates: blank text and ``None`` count as missing too."""
    if isinstance(value, Undefined) or value is None or (isinstance(value, str) and not value.strip()):
        return default_value
    if boolean and not value:
        return default_value
    return value


def _bounded_filter(name: str, func: Any) -> Any:
    @functools.wraps(func)  # keeps the pass_context / pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        # With a pass_* mark the first argument is the context/environment, then the value.
        offset = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
        value, rest = (args[offset], args[offset + 1:]) if len(args) > offset else (None, ())
        if name in _WIDTH_FILTERS:
            for arg in (*rest, *kwargs.values()):
                _check_width(arg)
        if name == "replace" and isinstance(value, str) and len(rest) >= 2:
            _projected_replace(value, *rest[:3])
        if name == "join":
            _projected_join(rest[0] if rest else kwargs.get("d", ""), value)
        if name == "format" and isinstance(value, str):
            _check_percent_format(value)
        return _check_size(func(*args, **kwargs))

    return bounded


class _BoundedCodeGenerator(CodeGenerator):
    """Counts loop iterations, and checks the size of ``~`` concatenations."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        counted = nodes.Call(nodes.EnvironmentAttribute("counted"), [node.iter], [], None, None,
                             lineno=node.lineno)
        super().visit_For(nodes.For(node.target, counted, node.body, node.else_, node.test, node.recursive,
                                    lineno=node.lineno), frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class PushEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the bounds of this module (see the module docstring)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    concat = staticmethod(_bounded_join)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.filters.update(default=_fallback, d=_fallback)
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """``*``, ``**``, ``+``, ``%``: refuse results past the bounds before computing them."""
        if operator == "*":
            if isinstance(left, int) and isinstance(right, _SEQUENCES):
                left, right = right, left
            if isinstance(left, _SEQUENCES) and isinstance(right, int):
                if len(left) * max(right, 0) > MAX_VALUE:
                    raise _limit(f"a value longer than {MAX_VALUE}")
            elif isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
                    raise _limit(f"a number larger than {MAX_INT_BITS} bits")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                if (left.bit_length() - 1) * right > MAX_INT_BITS:
                    raise _limit(f"a number larger than {MAX_INT_BITS} bits")
        elif operator == "+":
            if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
                if len(left) + len(right) > MAX_VALUE:
                    raise _limit(f"a value longer than {MAX_VALUE}")
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        return _check_size(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Any:
        """``'...'.format``: the format string is checked when the method is looked up."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_str_format(value.__self__)
        return wrapped

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Every call takes a step; str methods that pad, replace or join are checked first."""
        _step()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name in _PADDING_METHODS:
                for arg in (*args, *kwargs.values()):
                    _check_width(arg)
                if name == "expandtabs":
                    tabsize = args[0] if args else kwargs.get("tabsize", 8)
                    if isinstance(tabsize, int) and len(owner) + owner.count("\t") * tabsize > MAX_VALUE:
                        raise _limit(f"a value longer than {MAX_VALUE}")
            elif name == "replace" and len(args) >= 2:
                _projected_replace(owner, *args[:3])
            elif name == "join" and args:
                _projected_join(owner, args[0])
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def counted(self, iterable: Any) -> Iterator[Any]:
        """A loop's items, one step each."""
        for item in iterable:
            _step()
            yield item


@functools.lru_cache(maxsize=1)
def _env() -> PushEnvironment:
    # Push texts are plain text (the service worker shows them as text), so no HTML escaping;
    # the sandbox stops templates from reaching Python internals.
    return PushEnvironment(autoescape=False, trim_blocks=True, lstrip_blocks=True)


@functools.lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    return _env().from_string(source)


def uses(source: str, name: str) -> bool:
    """Whether the template may read the variable ``name`` (True when it does not parse: the
    caller then renders it per value, and the render reports the error)."""
    if not source:
        return False
    try:
        return name in meta.find_undeclared_variables(_env().parse(source))
    except TemplateError:
        return True


def render(source: str, context: dict[str, Any]) -> str:
    """Render one template with ``context``; missing variables render empty.

    Raises one of ``RENDER_ERRORS`` (``TemplateLimitError`` past a bound).
    """
    if not source:
        return ""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise _limit(f"a template longer than {MAX_TEMPLATE_CHARS} characters")
    template = _compile(source)
    token = _steps_left.set([MAX_STEPS])
    try:
        parts, size = [], 0
        for chunk in template.generate(**context):
            size += len(chunk.encode("utf-8", "surrogatepass"))
            if size > MAX_OUTPUT_BYTES:
                raise _limit(f"more than {MAX_OUTPUT_BYTES} bytes of output")
            parts.append(chunk)
    finally:
        _steps_left.reset(token)
    return " ".join("".join(parts).split())


FALLBACK_FILTERS = frozenset({"default", "d"})


def _names(node: nodes.Node) -> set[str]:
    """The names ``node`` reads, itself included (``find_all`` looks only below it)."""
    found = {n.name for n in node.find_all(nodes.Name)}
    return found | {node.name} if isinstance(node, nodes.Name) else found


def _printed(node: nodes.Node, guarded: frozenset[str], out: set[str]) -> None:
    """Add to ``out`` the names ``node`` may print neither behind a fallback nor inside a
    condition that tests them (``{% if first_name %}…{% endif %}``, ``a if a else b``)."""
    if isinstance(node, nodes.Filter) and node.name in FALLBACK_FILTERS:
        for child in (*node.args, *node.kwargs):
            _printed(child, guarded, out)
        return  # the filtered value itself is covered
    if isinstance(node, nodes.If):
        tested = guarded | _names(node.test)
        for child in node.body:
            _printed(child, tested, out)
        for branch in node.elif_:
            _printed(branch, guarded, out)
        for child in node.else_:
            _printed(child, guarded, out)
        return
    if isinstance(node, nodes.CondExpr):
        _printed(node.expr1, guarded | _names(node.test), out)
        if node.expr2 is not None:
            _printed(node.expr2, guarded, out)
        return
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in guarded:
        out.add(node.name)
        return
    for child in node.iter_child_nodes():
        _printed(child, guarded, out)


def unguarded_variables(source: str) -> set[str]:
    """The context variables ``source`` prints with no fallback and no condition around them;
    an empty set for a template that does not compile or is too long (saving it reports that)."""
    if len(source) > MAX_TEMPLATE_CHARS:
        return set()
    try:
        tree = _env().parse(source)
    except TemplateError:
        return set()
    out: set[str] = set()
    _printed(tree, frozenset(), out)
    return out & meta.find_undeclared_variables(tree) - set(_env().globals)


def is_blank(value: Any) -> bool:
    """Whether a context value prints as nothing (``None``, missing or blank text)."""
    return value is None or (isinstance(value, str) and not value.strip())


def describe(exc: BaseException) -> str:
    """A short message for one of ``RENDER_ERRORS`` (never the template's text)."""
    if isinstance(exc, TemplateError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:200]


def validate(field: str, source: str) -> str:
    """Compile and render ``source`` with sample data; return the text, or raise Invalid naming the field."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise Invalid(f"{field}: the template is longer than {MAX_TEMPLATE_CHARS} characters",
                      code="invalid_template")
    try:
        return render(source, SAMPLE_CONTEXT)
    except RENDER_ERRORS as exc:
        raise Invalid(f"{field}: {describe(exc)}", code="invalid_template") from None
