"""``Graph``: nodes with locations in world units and edges, on networkx."""

from __future__ import annotations

import copy
import itertools
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Union

import numpy as np

from .coordinate import Coordinate
from .graph_spec import GraphSpec
from .keys import GraphKey, GraphKeys
from .roi import Roi
from .errors import DataError

if TYPE_CHECKING:
    import networkx as nx


def _nx():
    # imported on first use: ``import dpowder`` does not load networkx (~1 s
    # and ~11 MiB in every process, a training stream's workers included)
    import networkx as nx

    return nx


__all__ = ["Graph", "Node", "Edge", "GraphKey", "GraphKeys", "GraphSpec"]


class Node:
    """A structure representing each node in a Graph.

    Args:

        id (int): A unique identifier for this Node.

        location (np.ndarray): The node's location, in world units.

        temporary (bool, optional): Marks a node made by an operation like
            ``trim`` that only exists because of a limited view.

        attrs (dict, optional): Any extra attributes.
    """

    __slots__ = ("attrs",)

    def __init__(self, id, location, temporary=False, attrs=None):
        self.attrs = {} if attrs is None else dict(attrs)
        self.attrs["id"] = id
        self.location = location
        self.attrs["temporary"] = temporary

    @classmethod
    def from_attrs(cls, attrs):
        """A Node viewing ``attrs`` (shared, not copied): changes to the node
        change the graph it came from."""
        node = cls.__new__(cls)
        node.attrs = attrs
        return node

    @property
    def id(self):
        return self.attrs["id"]

    @property
    def original_id(self):
        """The id of the node in the source; ``None`` for a temporary node
        (one made by ``trim``, with no counterpart in the source)."""
        return None if self.temporary else self.id

    @property
    def location(self):
        return self.attrs["location"]

    @location.setter
    def location(self, location):
        if not isinstance(location, np.ndarray):
            location = np.asarray(location, dtype=np.float32)
        self.attrs["location"] = location

    @property
    def temporary(self):
        return self.attrs.get("temporary", False)

    @property
    def all(self):
        return self.attrs

    def __eq__(self, other):
        return isinstance(other, Node) and self.id == other.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"Node({self.id}, {self.location})"

    def __getstate__(self):
        return self.attrs

    def __setstate__(self, state):
        self.attrs = state


class Edge:
    """A structure representing an edge in a graph.

    Args:

        u (int): The id of the 'u' node of this edge.

        v (int): The id of the 'v' node of this edge.

        attrs (dict, optional): Any extra attributes.
    """

    __slots__ = ("_u", "_v", "attrs")

    def __init__(self, u, v, attrs=None):
        self._u = u
        self._v = v
        self.attrs = {} if attrs is None else attrs

    @property
    def u(self):
        return self._u

    @property
    def v(self):
        return self._v

    @property
    def all(self):
        return self.attrs

    def __iter__(self):
        return iter((self._u, self._v))

    def __eq__(self, other):
        return isinstance(other, Edge) and (self.u, self.v) == (other.u, other.v)

    def directed_eq(self, other: "Edge") -> bool:
        """Whether ``other`` joins the same nodes in the same direction."""
        return (self.u, self.v) == (other.u, other.v)

    def undirected_eq(self, other: "Edge") -> bool:
        """Whether ``other`` joins the same nodes, in either direction."""
        return {self.u, self.v} == {other.u, other.v}

    def __hash__(self):
        return hash((self.u, self.v))

    def __repr__(self):
        return f"Edge({self.u}, {self.v})"

    def __getstate__(self):
        return (self._u, self._v, self.attrs)

    def __setstate__(self, state):
        self._u, self._v, self.attrs = state


class Graph:
    """Nodes (``Node``) and edges (``Edge``) with a ``GraphSpec``.

    A spec with ``directed=None`` makes a directed graph, as in gunpowder.
    Node locations are cast to ``spec.dtype``.

    Args:

        nodes (iterator of Node): The nodes.

        edges (iterator of Edge): The edges.

        spec (GraphSpec): A spec describing the data.
    """

    def __init__(self, nodes, edges, spec):
        self.spec = spec
        self._graph = self.create_graph(nodes, edges)

    def new_graph(self) -> nx.Graph:
        """An empty networkx graph of this graph's kind: a ``DiGraph`` unless
        the spec says undirected."""
        return _nx().Graph() if self.spec.directed is False else _nx().DiGraph()

    def create_graph(self, nodes: Iterable[Node], edges: Iterable[Edge]) -> nx.Graph:
        """A networkx graph (see ``new_graph``) holding ``nodes``, their
        locations cast to the spec's dtype, and ``edges``. The nodes'
        attributes are copied."""
        graph = self.new_graph()
        dtype = self.spec.dtype
        for node in nodes:
            attrs = dict(node.attrs)
            if dtype is not None:
                attrs["location"] = np.asarray(attrs["location"], dtype=dtype)
            graph.add_node(node.id, **attrs)
        for edge in edges:
            graph.add_edge(edge.u, edge.v, **edge.attrs)
        return graph

    @classmethod
    def from_nx_graph(cls, graph, spec):
        """A Graph over a networkx graph whose nodes have a ``location``
        attribute (world units). The networkx graph is used, not copied."""
        if spec.directed is None:
            spec.directed = graph.is_directed()
        elif spec.directed != graph.is_directed():
            raise DataError(
                f"GraphSpec says directed={spec.directed} but the networkx graph is "
                f"{'directed' if graph.is_directed() else 'undirected'}"
            )
        g = cls([], [], spec)
        g._graph = graph
        return g

    def to_nx_graph(self):
        """The networkx graph holding this graph's data."""
        return self._graph

    @property
    def directed(self):
        """The spec's ``directed``, or, where that is ``None``, whether the
        networkx graph is directed."""
        if self.spec.directed is not None:
            return self.spec.directed
        return self._graph.is_directed()

    @property
    def roi(self):
        return self.spec.roi

    @property
    def nodes(self):
        for node_id, attrs in self._graph.nodes(data=True):
            if "id" not in attrs:
                attrs["id"] = node_id
            yield Node.from_attrs(attrs)

    @property
    def edges(self):
        for u, v, attrs in self._graph.edges(data=True):
            yield Edge(u, v, attrs)

    def num_vertices(self):
        return self._graph.number_of_nodes()

    def num_edges(self):
        return self._graph.number_of_edges()

    def __len__(self):
        return self._graph.number_of_nodes()

    def node(self, id):
        """Get node with a specific id."""
        attrs = self._graph.nodes[id]
        attrs.setdefault("id", id)
        return Node.from_attrs(attrs)

    def contains(self, node_id):
        return node_id in self._graph.nodes

    def edge(self, id):
        """Get a specific edge, by ``(u, v)``."""
        u, v = id
        return Edge(u, v, self._graph.edges[u, v])

    def neighbors(self, node):
        node_id = node.id if isinstance(node, Node) else node
        if self.directed:
            ids = itertools.chain(self._graph.successors(node_id), self._graph.predecessors(node_id))
        else:
            ids = self._graph.neighbors(node_id)
        for n in ids:
            yield self.node(n)

    def in_degree(self):
        """The in-degree of every node: networkx's ``InDegreeView`` (node id
        -> degree); for an undirected graph, the degree."""
        graph = self._graph
        return graph.in_degree() if graph.is_directed() else graph.degree()

    def successors(self, node: Union[Node, Any]) -> Iterator[Any]:
        """The ids of the nodes ``node`` has an edge to; its neighbours in an
        undirected graph."""
        node_id = node.id if isinstance(node, Node) else node
        graph = self._graph
        return graph.successors(node_id) if graph.is_directed() else graph.neighbors(node_id)

    def predecessors(self, node: Union[Node, Any]) -> Iterator[Any]:
        """The ids of the nodes with an edge to ``node``; its neighbours in an
        undirected graph."""
        node_id = node.id if isinstance(node, Node) else node
        graph = self._graph
        return graph.predecessors(node_id) if graph.is_directed() else graph.neighbors(node_id)

    def in_edges(self, node):
        for u, v, attrs in self._graph.in_edges(node.id, data=True):
            yield Edge(u, v, attrs)

    def out_edges(self, node):
        for u, v, attrs in self._graph.out_edges(node.id, data=True):
            yield Edge(u, v, attrs)

    def add_node(self, node):
        """Add a node; an existing node of the same id has its attributes
        overwritten. Its location is cast to the spec's dtype (on ``node``
        too, as in gunpowder)."""
        dtype = self.spec.dtype
        if dtype is not None and np.asarray(node.location).dtype != dtype:
            node.location = np.asarray(node.location).astype(dtype)
        self._graph.add_node(node.id, **node.attrs)

    def add_edge(self, edge):
        """Add an edge; an existing edge (u, v) has its attributes
        overwritten."""
        self._graph.add_edge(edge.u, edge.v, **edge.attrs)

    def remove_node(self, node, retain_connectivity=False):
        """Remove a node. With ``retain_connectivity``, its neighbours are
        connected to each other (a->b->c without b becomes a->c)."""
        node_id = node.id if isinstance(node, Node) else node
        if retain_connectivity:
            if self.directed:
                new_edges = [
                    (p, s) for p in self._graph.predecessors(node_id) for s in self._graph.successors(node_id) if p != s
                ]
            else:
                neighbours = list(self._graph.neighbors(node_id))
                new_edges = list(itertools.combinations(neighbours, 2))
            self._graph.add_edges_from(new_edges)
        self._graph.remove_node(node_id)

    def remove_edge(self, edge):
        """Remove an edge from the graph."""
        self._graph.remove_edge(edge.u, edge.v)

    def copy(self):
        """A copy of this graph; node and edge attributes are copied too."""
        g = Graph.__new__(Graph)
        g.spec = self.spec.copy()
        graph = self._graph.__class__()
        graph.add_nodes_from(
            (n, {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in attrs.items()})
            for n, attrs in self._graph.nodes(data=True)
        )
        graph.add_edges_from((u, v, dict(attrs)) for u, v, attrs in self._graph.edges(data=True))
        g._graph = graph
        return g

    def __deepcopy__(self, memo):
        return self.copy()

    def _inside(self, roi):
        """The ids of the nodes inside ``roi``, tested all at once."""
        if self._graph.number_of_nodes() == 0:
            return set()
        ids, locations = zip(*self._graph.nodes(data="location"))
        mask = contains_points(roi, np.asarray(locations, dtype=np.float64))
        return {i for i, m in zip(ids, mask) if m}

    def crop(self, roi):
        """A copy restricted to ``roi`` (world units): nodes outside are
        removed except "dangling" ones, the outside end of an edge whose other
        end is inside. ``trim`` replaces those by nodes on the ROI boundary."""
        graph = self._graph
        inside = self._inside(roi)
        keep = set(inside)
        keep_edges = []
        for u, v in graph.edges():
            if u in inside or v in inside:
                keep.add(u)
                keep.add(v)
                keep_edges.append((u, v))
        cropped = Graph.__new__(Graph)
        cropped.spec = self.spec.copy()
        cropped.spec.roi = Roi(roi.offset, roi.shape)
        sub = graph.__class__()
        sub.add_nodes_from(
            (n, {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in graph.nodes[n].items()})
            for n in graph.nodes
            if n in keep
        )
        sub.add_edges_from((u, v, dict(graph.edges[u, v])) for u, v in keep_edges)
        cropped._graph = sub
        return cropped

    def trim(self, roi):
        """A copy in which every node outside ``roi`` is removed and each edge
        leaving the ROI ends at a new temporary node where it crosses the ROI
        boundary."""
        return self.copy()._trim_in_place(roi)

    def crop_trimmed(self, roi):
        """``crop(roi).trim(roi)`` with one copy instead of two (what a batch
        cropped to a request holds)."""
        return self.crop(roi)._trim_in_place(roi)

    def _trim_in_place(self, roi):
        """Each edge with one end outside ``roi`` gets, in place of that end,
        a temporary node (the outside node's attributes, ``original_id``
        ``None``) where it crosses the ROI boundary, keeping the edge's
        direction; new ids count up from the largest id kept. An inside end
        already on the boundary takes no new node. Then every node outside
        is removed."""
        graph = self._graph
        inside = self._inside(roi)
        crossing = [(u, v, attrs) for u, v, attrs in graph.edges(data=True) if (u in inside) != (v in inside)]
        kept = set(inside).union(*((u, v) for u, v, _ in crossing))
        new_ids = itertools.count(max((n for n in kept if isinstance(n, (int, np.integer))), default=-1) + 1)
        dtype = self.spec.dtype if self.spec.dtype is not None else np.float32
        new_nodes, new_edges = [], []
        for u, v, attrs in crossing:
            in_id, out_id = (u, v) if u in inside else (v, u)
            in_location = graph.nodes[in_id]["location"]
            out_attrs = graph.nodes[out_id]
            location = _roi_intersection(in_location, out_attrs["location"], roi).astype(dtype)
            if np.allclose(location, in_location):
                continue
            new_id = next(new_ids)
            new_attrs = {k: copy.deepcopy(val) for k, val in out_attrs.items() if k not in ("location", "id")}
            new_attrs.update(id=new_id, location=location, temporary=True)
            new_nodes.append((new_id, new_attrs))
            new_edges.append((in_id, new_id, dict(attrs)) if u == in_id else (new_id, in_id, dict(attrs)))
        # outside nodes go first: a new id may equal an unconnected outside node's
        graph.remove_nodes_from([n for n in list(graph.nodes) if n not in inside])
        graph.add_nodes_from(new_nodes)
        graph.add_edges_from(new_edges)
        self.spec.roi = Roi(roi.offset, roi.shape)
        return self

    def merge(self, other, copy_from_self=False, copy=False):
        """Merge with another graph; one must contain the other's ROI. Nodes
        and edges of the receiving graph inside the other's ROI are replaced
        by the other's (vice versa with ``copy_from_self``)."""
        if copy_from_self:
            src, dst = self, other
        else:
            src, dst = other, self
        if not (dst.spec.roi.contains(src.spec.roi) or src.spec.roi.contains(dst.spec.roi)):
            raise DataError(f"Can not merge graphs with ROIs {dst.spec.roi} and {src.spec.roi}")
        if src.spec.roi.contains(dst.spec.roi):
            return src.copy() if copy else src
        merged = dst.copy()
        graph = merged._graph
        graph.remove_nodes_from(list(merged._inside(src.spec.roi)))
        for node in src.nodes:
            graph.add_node(node.id, **node.attrs)
        for edge in src.edges:
            graph.add_edge(edge.u, edge.v, **edge.attrs)
        return merged

    def shift(self, offset):
        """Move every node by ``offset`` (world units), and the ROI with it."""
        offset = np.asarray(offset)
        for _, attrs in self._graph.nodes(data=True):
            attrs["location"] = (attrs["location"] + offset).astype(attrs["location"].dtype)
        if self.spec.roi is not None:
            self.spec.roi = self.spec.roi.shift(Coordinate(int(o) for o in offset))

    def relabel_connected_components(self):
        """Set the attribute ``component`` of every node to the index of its
        (weakly) connected component, in order of the smallest node id."""
        graph = self._graph
        components = (
            _nx().weakly_connected_components(graph) if graph.is_directed() else _nx().connected_components(graph)
        )
        components = sorted((sorted(c) for c in components), key=lambda c: c[0])
        for i, component in enumerate(components):
            for n in component:
                graph.nodes[n]["component"] = i

    def __repr__(self):
        return f"Graph({self.num_vertices()} nodes, {self.num_edges()} edges, {self.spec})"


def contains_points(roi, locations):
    """Which rows of ``locations`` (n x dims, world units) lie in ``roi``
    (begin inclusive, end exclusive; unbounded axes contain everything).
    As funlib's ``Roi.contains``, a ROI compares the leading axes of longer
    locations and contains no location with fewer axes than it has."""
    mask = np.ones(len(locations), dtype=bool)
    if len(locations) and locations.shape[1] < roi.dims:
        return ~mask
    for d, (begin, end) in enumerate(zip(roi.begin, roi.end)):
        if begin is not None:
            mask &= locations[:, d] >= begin
        if end is not None:
            mask &= locations[:, d] < end
    return mask


def _roi_intersection(inside, outside, roi):
    """Where the segment from ``inside`` to ``outside`` leaves ``roi``, nudged
    just inside so that ``roi.contains`` holds."""
    inside = np.asarray(inside, dtype=np.float64)
    outside = np.asarray(outside, dtype=np.float64)
    direction = outside - inside
    begin = np.array([-np.inf if b is None else b for b in roi.begin], dtype=np.float64)
    end = np.array([np.inf if e is None else e for e in roi.end], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_begin = (begin - inside) / direction
        t_end = (end - inside) / direction
    candidates = np.concatenate([t_begin, t_end])
    candidates = candidates[np.isfinite(candidates) & (candidates >= 0) & (candidates <= 1)]
    t = candidates.min() if candidates.size else 1.0
    location = inside + t * direction
    location = np.minimum(np.maximum(location, begin), np.nextafter(end, -np.inf))
    dtype = np.asarray(outside).dtype if np.asarray(outside).dtype.kind == "f" else np.float32
    location = location.astype(np.float32)
    # float32 rounding can land exactly on the end face again
    too_far = location >= end
    location[too_far] = np.nextafter(end[too_far].astype(np.float32), np.float32(-np.inf))
    return location.astype(dtype) if dtype != np.float32 else location
