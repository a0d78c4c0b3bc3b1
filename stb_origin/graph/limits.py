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
# How many objects a list field may return at most, when the query does not say.
LIST_SIZES = {"channels": 100, "guide": 100, "entitlements": 100, "packages": 1}


def _size(field: FieldNode) -> int:
    name = field.name.value
    for argument in field.arguments or ():
        if argument.name.value == "first" and isinstance(argument.value, IntValueNode):
            return max(1, int(argument.value.value))
    return LIST_SIZES.get(name, 1)


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
