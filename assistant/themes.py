"""Themes of a collection: k-means over paper vectors, c-TF-IDF keywords, a 2-D map. Numpy only.

Clustering runs on the leading principal components of the paper vectors (those explaining half
of the variance), not on all 384 dimensions: every abstract of a day's batch shares a large
"machine-learning paper" component, and in the full space distances concentrate so much that the
silhouette score cannot tell k=2 from k=8 (on the sample collection it is 0.03-0.05 for every k).
In the reduced space the themes separate and the silhouette picks their number.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from assistant.schema import Paper
from assistant.text import ML_WORDS, RESEARCH_WORDS, STOPWORDS, singular

N_INIT = 10
MAX_ITERATIONS = 100
EXPLAINED_VARIANCE = 0.5
"""Keep the principal components that explain this share of the variance (at least 2, at most MAX_COMPONENTS)."""
MAX_COMPONENTS = 32
SILHOUETTE_SAMPLE = 2000
"""Above this many papers the silhouette is estimated on a seeded sample: the full distance matrix grows as n²."""
CLUSTER_SAMPLE = 2000
"""Above this many papers k-means runs on a seeded sample of this size and every paper joins the nearest
centre. Choosing k over 10,000 papers (7 values of k, 10 runs each) took 50.6 s on the 2-core box (12
synthetic themes); on the sample it takes a fifth of that, and the centres of 2,000 papers place the rest."""

_WORD = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_SENTENCE_BREAK = re.compile(r"[.;:!?()\[\]]")


def _unit_rows(vectors: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    ids = list(vectors)
    matrix = np.asarray([np.asarray(vectors[i], dtype=np.float64) for i in ids])
    matrix /= np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)
    return ids, matrix


def _squared_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    squared = (points**2).sum(1)[:, None] - 2 * points @ centers.T + (centers**2).sum(1)[None, :]
    return np.maximum(squared, 0.0)


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Seeds spread out by sampling each next centre with probability proportional to squared distance."""
    centers = [points[rng.integers(len(points))]]
    closest = _squared_distances(points, centers[0][None, :])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        index = rng.choice(len(points), p=closest / total) if total > 0 else rng.integers(len(points))
        centers.append(points[index])
        closest = np.minimum(closest, _squared_distances(points, points[index][None, :])[:, 0])
    return np.asarray(centers)


def kmeans(points: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Labels of the best of ``N_INIT`` k-means++ runs (lowest inertia); the same seed gives the same labels."""
    rng = np.random.default_rng([seed, k])
    best_labels, best_inertia = np.zeros(len(points), dtype=int), math.inf
    for _ in range(N_INIT):
        centers = _kmeans_plus_plus(points, k, rng)
        for _ in range(MAX_ITERATIONS):
            distances = _squared_distances(points, centers)
            labels = distances.argmin(1)
            membership = np.eye(k)[labels]
            sizes = membership.sum(0)
            updated = (membership.T @ points) / np.maximum(sizes, 1)[:, None]
            for empty in np.flatnonzero(sizes == 0):  # restart at the point worst served by its centre
                updated[empty] = points[distances.min(1).argmax()]
            if np.allclose(updated, centers):
                break
            centers = updated
        distances = _squared_distances(points, centers)
        labels = distances.argmin(1)
        inertia = float(distances.min(1).sum())
        if inertia < best_inertia - 1e-12:
            best_labels, best_inertia = labels, inertia
    return best_labels


def silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Euclidean); points alone in their cluster count 0, as in scikit-learn."""
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return -1.0
    distances = np.sqrt(_squared_distances(points, points))
    membership = (labels[:, None] == clusters[None, :]).astype(np.float64)
    sizes = membership.sum(0)
    totals = distances @ membership
    own = np.searchsorted(clusters, labels)
    own_size = sizes[own]
    within = np.where(own_size > 1, totals[np.arange(len(points)), own] / np.maximum(own_size - 1, 1), 0.0)
    mean_to = totals / sizes[None, :]
    mean_to[np.arange(len(points)), own] = np.inf
    nearest = mean_to.min(1)
    scores = np.where(own_size > 1, (nearest - within) / np.maximum(np.maximum(nearest, within), 1e-12), 0.0)
    return float(scores.mean())


def choose_k(points: np.ndarray, *, min_k: int = 2, max_k: int = 8, seed: int = 0) -> tuple[int, np.ndarray]:
    """The k in [min_k, max_k] with the best silhouette (the smaller k on ties) and its labels."""
    n = len(points)
    sample = np.arange(n)
    if n > SILHOUETTE_SAMPLE:
        sample = np.sort(np.random.default_rng(seed).choice(n, SILHOUETTE_SAMPLE, replace=False))
    best: tuple[float, int, np.ndarray] | None = None
    for k in range(max(2, min_k), min(max_k, n - 1) + 1):
        labels = kmeans(points, k, seed=seed)
        score = silhouette(points[sample], labels[sample])
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels)
    if best is None:
        return 1, np.zeros(n, dtype=int)
    return best[1], best[2]


def principal_axes(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes (rows, strongest first) and the variance along each, by numpy SVD.

    With more papers than dimensions the SVD runs on the d x d scatter matrix: the same axes,
    seconds faster for thousands of papers than decomposing the n x d matrix itself.
    """
    if len(centred) > centred.shape[1]:
        _, variances, axes = np.linalg.svd(centred.T @ centred)
        return axes, variances
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    return axes, singular**2


def reduce_dimensions(points: np.ndarray) -> np.ndarray:
    """Unit vectors in the space of the leading principal components (see the module docstring)."""
    centred = points - points.mean(0)
    components, variances = principal_axes(centred)
    explained = np.cumsum(variances) / max(float(variances.sum()), 1e-12)
    kept = int(np.searchsorted(explained, EXPLAINED_VARIANCE) + 1)
    kept = min(max(kept, 2), MAX_COMPONENTS, len(components))
    reduced = centred @ components[:kept].T
    return reduced / np.clip(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12, None)


def cluster_papers(
    vectors: Mapping[str, np.ndarray], *, min_k: int = 2, max_k: int = 8, seed: int = 0
) -> list[list[str]]:
    """Paper ids grouped into themes, largest theme first; ids keep the order of ``vectors``.

    A collection of one to three papers is one theme: there is nothing to separate.
    """
    if not vectors:
        return []
    ids, points = _unit_rows(vectors)
    if len(ids) <= 3:
        return [ids]
    reduced = reduce_dimensions(points)
    if len(ids) > CLUSTER_SAMPLE:
        sample = np.sort(np.random.default_rng(seed).choice(len(ids), CLUSTER_SAMPLE, replace=False))
        _, sample_labels = choose_k(reduced[sample], min_k=min_k, max_k=max_k, seed=seed)
        centers = np.asarray([reduced[sample][sample_labels == label].mean(0) for label in np.unique(sample_labels)])
        labels = _squared_distances(reduced, centers).argmin(1)
    else:
        _, labels = choose_k(reduced, min_k=min_k, max_k=max_k, seed=seed)
    groups: dict[int, list[str]] = {}
    for paper_id, label in zip(ids, labels, strict=True):
        groups.setdefault(int(label), []).append(paper_id)
    position = {paper_id: i for i, paper_id in enumerate(ids)}
    return sorted(groups.values(), key=lambda group: (-len(group), position[group[0]]))


# --- keywords -------------------------------------------------------------------------------------
def _terms(text: str) -> list[tuple[str, str]]:
    """(key, surface) of the content words of ``text`` and of pairs of adjacent content words."""
    terms = []
    for fragment in _SENTENCE_BREAK.split(text.lower()):
        previous: str | None = None
        for match in _WORD.finditer(fragment):
            word = match.group()
            if word in STOPWORDS or word in RESEARCH_WORDS or word in ML_WORDS or len(word) < 3 or word.isdigit():
                previous = None
                continue
            terms.append((singular(word), word))
            if previous is not None:
                terms.append((f"{singular(previous)} {singular(word)}", f"{previous} {word}"))
            previous = word
    return terms


def theme_keywords(papers: Sequence[Paper], clusters: Sequence[Sequence[str]], n: int = 4) -> list[list[str]]:
    """The ``n`` most distinctive terms of each cluster by class-based TF-IDF over titles and abstracts.

    A term's c-TF-IDF (its frequency in the cluster times log(1 + average cluster size / its frequency
    in all clusters)) is weighted by the square root of the share of the cluster's papers that use
    it, and the term must occur in at least two of them (when there are two), so that one paper's
    jargon does not name a whole theme. Overlapping terms ("continual", "continual learning") are
    given once, and no term names two themes: the first (largest) theme that ranks it keeps it.
    """
    by_id = {paper.paper_id: paper for paper in papers}
    surfaces: dict[str, Counter[str]] = {}
    counts: list[Counter[str]] = []  # term -> occurrences in the cluster
    spread: list[Counter[str]] = []  # term -> papers of the cluster using it
    for cluster in clusters:
        counts.append(Counter())
        spread.append(Counter())
        for paper in (by_id[paper_id] for paper_id in cluster if paper_id in by_id):
            terms = _terms(f"{paper.title}. {paper.abstract}")
            for key, surface in terms:
                surfaces.setdefault(key, Counter())[surface] += 1
            counts[-1].update(key for key, _ in terms)
            spread[-1].update({key for key, _ in terms})

    totals: Counter[str] = Counter()
    for cluster_counts in counts:
        totals.update(cluster_counts)
    average_size = sum(totals.values()) / max(len(counts), 1)
    keywords: list[list[str]] = []
    taken: set[str] = set()
    for cluster, cluster_counts, users in zip(clusters, counts, spread, strict=True):
        size = sum(cluster_counts.values())
        members = sum(paper_id in by_id for paper_id in cluster)

        weights = {
            key: count / size * math.log(1 + average_size / totals[key]) * math.sqrt(users[key] / members)
            for key, count in cluster_counts.items()
            if users[key] >= min(2, members)
        }
        chosen: list[str] = []
        for key in sorted(weights, key=lambda key: (-weights[key], key)):
            words = set(key.split())
            if key in taken or any(words & set(other.split()) for other in chosen):
                continue
            chosen.append(key)
            if len(chosen) == n:
                break
        taken.update(chosen)
        keywords.append([surfaces[key].most_common(1)[0][0] for key in chosen])
    return keywords


def project_2d(vectors: Mapping[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Coordinates on the first two principal components (numpy SVD), signs fixed so the map is stable."""
    if not vectors:
        return {}
    ids, points = _unit_rows(vectors)
    centred = points - points.mean(0)
    components = principal_axes(centred)[0][:2]
    # An SVD's signs are arbitrary: make each component's largest loading positive.
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(1)])
    coordinates = centred @ (components * signs[:, None]).T
    if coordinates.shape[1] < 2:
        coordinates = np.hstack([coordinates, np.zeros((len(ids), 2 - coordinates.shape[1]))])
    return {paper_id: (float(x), float(y)) for paper_id, (x, y) in zip(ids, coordinates, strict=True)}
