"""How much one query may ask for, checked before it runs.

Depth, tokens and aliases are strawberry's own limiters (``routes``); the cost
here bounds what they miss: a shallow query can still ask for a page of a
hundred channels, each with its whole guide. A field that returns objects costs
one per object it may return, times what is asked below it; a list's size is
its ``first`` argument when written in the query, else the most it may be.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

MAX_COST = 10_000
# How many objects a list field returns when the query does not say (the schema's
# default), and at most when it says so in a variable (the schema's maximum).
LIST_SIZES = {"channels": (50, 100), "titles": (20, 100), "entitlements": (100, 100),
              "episodes": (20, 100), "assets": (5, 5), "artwork": (4, 4),
              "renditions": (12, 12), "sizes": (3, 3), "continueWatching": (20, 100)}
# A guide's programmes: four an hour (few are shorter than 15 minutes) for 3 hours
# unless the query says how many hours (at most 48: graph.schema).
PROGRAMMES_PER_HOUR, GUIDE_HOURS, MAX_GUIDE_HOURS = 4, 3, 48


def _argument(field: FieldNode, name: str) -> tuple[bool, int | None]:
    """Whether the query passes the argument, and its value when written in the query."""
    for argument in field.arguments or ():
        if argument.name.value == name:
            value = argument.value
            return True, max(1, int(value.value)) if isinstance(value, IntValueNode) else None
    return False, None


def _size(field: FieldNode) -> int:
    name = field.name.value
    if name == "guide":
        written, hours = _argument(field, "hours")
        if hours is None:
            hours = MAX_GUIDE_HOURS if written else GUIDE_HOURS
        return PROGRAMMES_PER_HOUR * min(hours, MAX_GUIDE_HOURS)
    written, first = _argument(field, "first")
    default, most = LIST_SIZES.get(name, (1, 1))
    if first is None:
        return most if written else default
    return first


class CostLimit(ValidationRule):
    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self._fragments = {f.name.value: f for f in context.document.definitions
                           if isinstance(f, FragmentDefinitionNode)}

    def enter_operation_definition(self, node: OperationDefinitionNode,
                                   *_args: Any) -> None:
        cost = self._cost(node.selection_set, depth=0)
        if cost > MAX_COST:
            self.report_error(GraphQLError(
                f"query too costly: {cost} objects asked for, at most {MAX_COST}; ask for"
                " smaller pages (first:) or fewer nested lists", node))

    def _cost(self, selections: SelectionSetNode | None, depth: int) -> int:
        if selections is None or depth > 50:  # the depth limiter reports deeper ones
            return 0
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                if selection.selection_set is not None:
                    total += _size(selection) * (1 + self._cost(selection.selection_set,
                                                                depth + 1))
            elif isinstance(selection, InlineFragmentNode):
                total += self._cost(selection.selection_set, depth + 1)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments.get(selection.name.value)
                if fragment is not None:
                    total += self._cost(fragment.selection_set, depth + 1)
        return total
