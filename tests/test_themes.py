"""Themes: k-means with a silhouette-chosen k, c-TF-IDF keywords and the 2-D map, on the sample collection."""

from __future__ import annotations

import numpy as np
import pytest

from assistant import themes as themes_module
from assistant.schema import Paper
from assistant.store import PaperStore
from assistant.text import STOPWORDS
from assistant.themes import cluster_papers, kmeans, project_2d, silhouette, theme_keywords

Sample = tuple[list[Paper], dict[str, np.ndarray]]


@pytest.fixture(scope="module")
def sample(sample_store: PaperStore) -> Sample:
    """The sample's papers and the store's paper vectors, as the app clusters them."""
    return [stats.paper for stats in sample_store.list_papers()], sample_store.paper_vectors()


@pytest.fixture(scope="module")
def themes(sample: Sample) -> list[list[str]]:
    return cluster_papers(sample[1])


def blobs(sizes: list[int], dimension: int = 24, spread: float = 0.15, seed: int = 3) -> dict[str, np.ndarray]:
    """Well-separated groups of vectors, named by group: "g1-4" is the fifth vector of group 1."""
    rng = np.random.default_rng(seed)
    vectors = {}
    for group, size in enumerate(sizes):
        centre = rng.normal(size=dimension)
        for i in range(size):
            vectors[f"g{group}-{i}"] = centre + spread * rng.normal(size=dimension)
    return vectors


def test_the_sample_falls_into_a_reasonable_number_of_themes(sample: Sample, themes: list[list[str]]) -> None:
    print(f"\nthemes on the sample: k={len(themes)}, sizes {[len(theme) for theme in themes]}")
    assert 3 <= len(themes) <= 8
    assert all(len(theme) >= 2 for theme in themes)


def test_every_paper_is_in_exactly_one_theme_largest_first(sample: Sample, themes: list[list[str]]) -> None:
    members = [paper_id for theme in themes for paper_id in theme]
    assert sorted(members) == sorted(sample[1]) and len(members) == len(set(members)) == 46
    assert [len(theme) for theme in themes] == sorted((len(theme) for theme in themes), reverse=True)


def test_clustering_is_deterministic_for_a_seed(sample: Sample, themes: list[list[str]]) -> None:
    assert cluster_papers(sample[1], seed=0) == themes


def test_keywords_name_recognisable_themes(sample: Sample, themes: list[list[str]]) -> None:
    papers, _ = sample
    keywords = theme_keywords(papers, themes)
    by_id = {paper.paper_id: paper for paper in papers}
    for theme, words in zip(themes, keywords, strict=True):
        print(words, "|", "; ".join(by_id[paper_id].title[:30] for paper_id in theme))
    assert len(keywords) == len(themes) and all(len(words) == 4 for words in keywords)
    every = [word for words in keywords for word in words]
    assert not set(every) & STOPWORDS and len(every) == len(set(every))
    assert {"multi-task", "diffusion", "continual", "lora", "agents"} & set(every)
    # The two in-context LoRA papers share a theme, and its keywords say what it is about.
    lora = [i for i, theme in enumerate(themes) if {by_id[p].title.split(" ")[0] for p in theme} >= {"In-Context"}]
    assert any("diffusion" in keywords[i] or "lora" in keywords[i] for i in lora)


def test_keywords_for_a_single_paper_cluster_come_from_it() -> None:
    paper = Paper(
        paper_id="p",
        title="Gradient surgery for multi-task learning",
        abstract="Gradient surgery projects conflicting gradients. Gradient conflicts hurt.",
    )
    other = Paper(paper_id="q", title="Protein folding", abstract="Folding proteins with attention over residues.")
    words = theme_keywords([paper, other], [["p"], ["q"]], n=2)
    assert words[0][0].startswith("gradient") and words[1][0] in {"folding", "protein", "residues", "proteins"}


def test_small_collections_are_one_theme() -> None:
    assert cluster_papers({}) == []
    three = blobs([1, 1, 1])
    assert cluster_papers(three) == [list(three)]


def test_well_separated_groups_are_found() -> None:
    vectors = blobs([9, 7, 5])
    themes = cluster_papers(vectors)
    assert [sorted({paper_id.split("-")[0] for paper_id in theme}) for theme in themes] == [["g0"], ["g1"], ["g2"]]
    assert len(cluster_papers(blobs([6, 6, 6, 6, 6]), max_k=8)) == 5
    assert len(cluster_papers(blobs([6, 6, 6, 6, 6]), max_k=3)) <= 3


def test_silhouette_matches_the_definition() -> None:
    points = np.array([[0.0], [1.0], [10.0], [11.0]])
    # a = 1 for every point; b = 10.5, 9.5, 9.5, 10.5; s = (b - a) / b
    expected = np.mean([(10.5 - 1) / 10.5, (9.5 - 1) / 9.5, (9.5 - 1) / 9.5, (10.5 - 1) / 10.5])
    assert silhouette(points, np.array([0, 0, 1, 1])) == pytest.approx(expected)
    assert silhouette(points, np.array([0, 0, 0, 0])) == -1.0


def test_kmeans_is_reproducible() -> None:
    points = np.random.default_rng(0).normal(size=(60, 5))
    assert np.array_equal(kmeans(points, 4, seed=1), kmeans(points, 4, seed=1))
    assert set(kmeans(points, 4, seed=1)) == {0, 1, 2, 3}


def test_projection_covers_every_paper(sample: Sample) -> None:
    _, vectors = sample
    points = project_2d(vectors)
    assert list(points) == list(vectors)
    xy = np.array(list(points.values()))
    assert xy.shape == (46, 2) and np.all(np.isfinite(xy))
    assert np.allclose(xy.mean(0), 0, atol=1e-6) and xy[:, 0].var() >= xy[:, 1].var() > 0
    assert project_2d(vectors) == points


def test_projection_of_tiny_collections() -> None:
    assert project_2d({}) == {}
    assert project_2d({"a": np.ones(4)}) == {"a": (0.0, 0.0)}
    two = project_2d({"a": np.array([1.0, 0, 0]), "b": np.array([0, 1.0, 0])})
    assert two["a"][1] == pytest.approx(0) and two["a"][0] == pytest.approx(-two["b"][0])


def test_a_large_collection_is_clustered_on_a_sample_and_every_paper_placed(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 24)) * 5
    vectors = {f"p{i}": centres[i % 4] + rng.normal(size=24) for i in range(400)}
    fitted: list[int] = []
    choose_k = themes_module.choose_k

    def spy(points: np.ndarray, **kwargs: int) -> tuple[int, np.ndarray]:
        fitted.append(len(points))
        return choose_k(points, **kwargs)

    monkeypatch.setattr(themes_module, "CLUSTER_SAMPLE", 100)
    monkeypatch.setattr(themes_module, "choose_k", spy)
    clusters = themes_module.cluster_papers(vectors)
    assert fitted == [100]  # k-means saw the sample only
    assert sorted(pid for cluster in clusters for pid in cluster) == sorted(vectors)  # every paper placed
    assert all(len({int(pid[1:]) % 4 for pid in cluster}) == 1 for cluster in clusters)  # the true groups
    assert len(clusters) == 4
