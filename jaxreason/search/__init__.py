"""Search to training (ASTRO): batched step-level MCTS (`mcts`), tree files (`trees`),
procedure cloning into reflective chains of thought (`cloning`), tree graphs (`render`) and
the pipeline data stages `search` and `clone` (`stages`). See docs/astro.md."""

from jaxreason.search.cloning import (CurationSettings, LinearizeError, Phrases, backtracks,
                                      curate, direct_trace, linearize, render_trace, terminals)
from jaxreason.search.mcts import (MCTSSettings, Node, SearchStats, Tree, backup, node_value,
                                   puct_scores, search_trees, select, step_priors, tree_stats)
from jaxreason.search.render import parse_trace, to_dot, to_html, trace_graph, tree_graph
from jaxreason.search.trees import (TreeFileError, append_tree, is_valid, read_trees,
                                    validate_tree, write_trees)

__all__ = ["CurationSettings", "LinearizeError", "MCTSSettings", "Node", "Phrases",
           "SearchStats", "Tree", "TreeFileError", "append_tree", "backtracks", "backup",
           "curate", "direct_trace", "is_valid", "linearize", "node_value", "parse_trace",
           "puct_scores", "read_trees", "render_trace", "search_trees", "select",
           "step_priors", "terminals", "to_dot", "to_html", "trace_graph", "tree_graph",
           "tree_stats", "validate_tree", "write_trees"]
