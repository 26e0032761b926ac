"""TopicModel on synthetic vectors (outlier reassignment, determinism) and on real embeddings of ten
intents."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from turret.topics.engine import (
    ASSIGNED_CLUSTER,
    ASSIGNED_NEAREST,
    ASSIGNED_PENDING,
    TopicModel,
    auto_min_cluster_size,
    default_min_cluster_size,
    fold_clusters,
    nearest_centroid,
    subject_size,
)
from turret.topics.reduce import NoReducer, PCAReducer, UMAPReducer, make_reducer


def blobs(n_per: int, k: int, dim: int = 32, spread: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    X = np.repeat(centers, n_per, axis=0) + spread * rng.standard_normal((k * n_per, dim)) / np.sqrt(dim) * 3
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), np.repeat(np.arange(k), n_per), centers.astype(np.float32)


def test_min_cluster_size_scales_in_power_of_two_steps():
    assert default_min_cluster_size(0) == default_min_cluster_size(200) == 5
    assert default_min_cluster_size(2048) == default_min_cluster_size(4095) == 16
    assert default_min_cluster_size(8192) == default_min_cluster_size(16383) == 55
    assert default_min_cluster_size(16384) == 102
    # Sub-linear: ten times the texts gives fewer than ten times the size (topics get a little finer).
    assert default_min_cluster_size(2 ** 20) < 2 ** 7 * default_min_cluster_size(2 ** 13)


def blob_model(**kwargs) -> TopicModel:
    """The engine on isotropic Gaussian blobs: PCA and excess-of-mass selection. UMAP (the default for text)
    cuts such blobs into pieces, which real sentence vectors do not show; text quality is checked on real
    texts (test_topics_store, test_cli_cluster) and measured on the dev suite (bench/quality.py)."""
    return TopicModel(reducer=PCAReducer(10), cluster_selection_method="eom", **kwargs)


def test_synthetic_blobs_are_recovered_with_sizes_and_unit_centroids():
    X, gold, _ = blobs(60, 6)
    model = blob_model().fit(X)
    assert model.n_topics_ == 6
    assert adjusted_rand_score(gold, model.labels_) == pytest.approx(1.0)
    assert model.sizes_.tolist() == [60] * 6
    assert np.allclose(np.linalg.norm(model.centroids_, axis=1), 1.0, atol=1e-5)
    assert model.unclustered_share_ == 0.0


def test_noise_near_a_topic_is_reassigned_and_far_noise_stays_unclustered():
    X, _, centers = blobs(60, 4)
    rng = np.random.default_rng(3)
    # Near: halfway between a centre and random directions (cosine to the centre ~0.7). Far: orthogonal-ish.
    near = centers[0] + 0.9 * rng.standard_normal((6, X.shape[1])) / np.sqrt(X.shape[1])
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    far = rng.standard_normal((6, X.shape[1]))
    far -= (far @ centers.T) @ np.linalg.pinv(centers.T)  # remove every centre's component
    far /= np.linalg.norm(far, axis=1, keepdims=True)
    data = np.vstack([X, near, far]).astype(np.float32)
    model = TopicModel(min_cluster_size=20).fit(data)
    near_rows = np.arange(len(X), len(X) + 6)
    far_rows = np.arange(len(X) + 6, len(data))
    first_topic = model.labels_[0]
    assert (model.labels_[near_rows] == first_topic).all()
    assert (model.labels_[far_rows] == -1).all()
    assert set(model.assigned_by_[far_rows]) == {ASSIGNED_PENDING}
    assert (model.similarities_[near_rows] >= model.outlier_threshold).all()


def test_without_outlier_threshold_every_text_gets_a_topic():
    X, _, _ = blobs(40, 3)
    noise = np.random.default_rng(5).standard_normal((10, X.shape[1])).astype(np.float32)
    model = TopicModel(outlier_threshold=None).fit(np.vstack([X, noise]))
    assert (model.labels_ >= 0).all()


def test_fit_is_deterministic_and_clusters_are_numbered_biggest_first():
    X, _, _ = blobs(50, 5)
    X = np.vstack([X, X[:30]])  # topic 0 gets 30 more rows
    a, b = TopicModel().fit(X), TopicModel().fit(X)  # the default reducer (UMAP) is seeded
    assert np.array_equal(a.labels_, b.labels_)
    assert np.allclose(a.centroids_, b.centroids_)
    assert list(a.sizes_) == sorted(a.sizes_, reverse=True)
    c = blob_model().fit(X)
    assert c.sizes_[0] == 80 and (c.labels_[:50] == 0).all()


def test_a_fit_larger_than_its_sample_clusters_the_sample_and_puts_the_rest_in_their_nearest_topic():
    X, gold, _ = blobs(300, 6)
    model = blob_model(fit_sample=600).fit(X)
    assert model.sample_.size == 600 and np.array_equal(model.sample_, np.unique(model.sample_))
    # The size rule follows the texts the clusterer saw, not the whole dimension.
    assert model.min_cluster_size_ == default_min_cluster_size(600) != default_min_cluster_size(len(X))
    assert model.n_topics_ == 6 and adjusted_rand_score(gold, model.labels_) == pytest.approx(1.0)
    unseen = np.setdiff1d(np.arange(len(X)), model.sample_)
    assert set(model.assigned_by_[unseen]) == {ASSIGNED_NEAREST}
    assert ASSIGNED_NEAREST not in set(model.assigned_by_[model.sample_])
    # The sample is seeded: the same data gives the same fit; fit_sample=None sees every row.
    again = blob_model(fit_sample=600).fit(X)
    assert np.array_equal(again.sample_, model.sample_) and np.array_equal(again.labels_, model.labels_)
    whole = blob_model(fit_sample=None).fit(X)
    assert whole.sample_ is None and whole.min_cluster_size_ == default_min_cluster_size(len(X))
    assert blob_model(fit_sample=len(X)).fit(X).sample_ is None


@pytest.mark.parametrize(("n_per", "k"), [(30, 150), (40, 100)])
def test_subject_size_is_read_from_where_neighbour_similarity_falls_fastest(n_per, k):
    X, _, _ = blobs(n_per, k, spread=0.3)
    size = subject_size(X)
    assert size is not None and n_per / 1.5 <= size <= n_per * 1.5
    # A topic must hold a third of it, and never more than the rule of n asks.
    chosen, read = auto_min_cluster_size(X)
    assert read == size
    assert chosen == min(default_min_cluster_size(len(X)), max(5, round(size / 3)))


def test_texts_without_separate_subjects_keep_the_rule_of_n():
    rng = np.random.default_rng(0)
    uniform = rng.standard_normal((4000, 32))
    uniform /= np.linalg.norm(uniform, axis=1, keepdims=True)
    # Subjects that overlap as much as one domain's intents do: similarity falls ever faster, no edge.
    overlapping, _, _ = blobs(30, 150, spread=0.5)
    for X in (uniform.astype(np.float32), overlapping):
        assert subject_size(X) is None
        assert auto_min_cluster_size(X) == (default_min_cluster_size(len(X)), None)
    small, _, _ = blobs(4, 20)
    assert subject_size(small) is None  # too few texts to read ranks from


def test_groups_of_near_identical_texts_are_a_cliff_not_a_subject():
    # 20 subjects, each of 10 templates filled 15 ways: similarity falls off a cliff after 15 texts.
    rng = np.random.default_rng(1)

    def unit(A):
        return A / np.linalg.norm(A, axis=1, keepdims=True)

    subjects = unit(rng.standard_normal((20, 32)))
    templates = unit(np.repeat(subjects, 10, axis=0) + 0.25 * rng.standard_normal((200, 32)))
    filled = unit(np.repeat(templates, 15, axis=0) + 0.04 * rng.standard_normal((3000, 32)))
    assert subject_size(filled.astype(np.float32), max_sharpness=np.inf) == pytest.approx(13.45, abs=0.01)
    assert subject_size(filled.astype(np.float32)) is None


def test_a_fit_of_many_small_subjects_uses_smaller_topics_than_the_rule_of_n():
    X, gold, _ = blobs(30, 150, spread=0.3)
    model = TopicModel(reducer=NoReducer()).fit(X)
    assert model.subject_size_ is not None and model.size_source_ == "subjects"
    assert model.min_cluster_size_ == 9 < default_min_cluster_size(len(X))
    # An explicit size is taken as it is: the rule's 29, a whole subject, merges subjects by the dozen.
    fixed = TopicModel(reducer=NoReducer(), min_cluster_size=29).fit(X)
    assert fixed.min_cluster_size_ == 29 and fixed.subject_size_ is None and fixed.size_source_ == "given"
    assert model.n_topics_ >= 0.7 * 150 > 2 * fixed.n_topics_
    assert adjusted_rand_score(gold, model.labels_) > adjusted_rand_score(gold, fixed.labels_) + 0.3


def test_too_few_texts_are_all_unclustered():
    X, _, _ = blobs(2, 3)
    model = TopicModel().fit(X)
    assert model.n_topics_ == 0
    assert (model.labels_ == -1).all()
    idx, sim = model.assign(X)
    assert (idx == -1).all()


def test_assign_uses_threshold():
    X, gold, centers = blobs(50, 3)
    model = blob_model().fit(X)
    idx, sim = model.assign(np.vstack([centers, -centers[:1]]), threshold=0.5)
    assert idx[:3].tolist() == [model.labels_[gold == g][0] for g in range(3)]
    assert idx[3] == -1


def test_nearest_centroid_in_chunks_matches_one_shot():
    X, _, centers = blobs(30, 4)
    a = nearest_centroid(X, centers)
    b = nearest_centroid(X, centers, chunk=7)
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])
    empty = nearest_centroid(X, np.zeros((0, X.shape[1]), dtype=np.float32))
    assert (empty[0] == -1).all()


def test_fold_clusters_merges_and_renumbers():
    X, gold, _ = blobs(20, 3)
    labels, C, sims = fold_clusters(X, gold.copy(), {1: 0})
    assert sorted(set(labels.tolist())) == [0, 1]
    assert (labels[gold == 2] == 1).all() and (labels[gold == 1] == 0).all()
    assert C.shape[0] == 2 and np.allclose(sims, np.einsum("ij,ij->i", X, C[labels]), atol=1e-5)


def test_umap_reduces_each_distinct_vector_once_and_its_copies_share_the_point():
    """Copies tie in UMAP's neighbour search, whose order is not repeatable from process to process (19,384
    dialogue turns fitted to 75 or 77 topics); reducing the distinct rows makes the fit repeatable."""
    X, _, _ = blobs(40, 3)
    with_copies = np.vstack([X, X[:10], X[5:7]])
    Z = UMAPReducer().fit_transform(with_copies)
    assert np.array_equal(Z[120:130], Z[:10]) and np.array_equal(Z[130:], Z[5:7])
    # The distinct rows, in order of first appearance, are what UMAP saw.
    assert np.array_equal(Z[:120], UMAPReducer().fit_transform(X))
    # Fewer distinct rows than UMAP needs: PCA stands in, over every row.
    few = UMAPReducer()
    assert few.fit_transform(np.repeat(X[:5], 20, axis=0)).shape == (100, 5) and few.fallback_


def test_reducers():
    X, _, _ = blobs(20, 3)
    Z = PCAReducer(5).fit_transform(X)
    assert Z.shape == (60, 5) and np.allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    assert PCAReducer(50).fit_transform(X[:4]).shape == (4, 3)  # capped by n - 1
    assert NoReducer().fit_transform(X).shape == X.shape
    with pytest.raises(ValueError, match="unknown reducer 'tsne'"):
        make_reducer("tsne")


def test_custom_clusterer_plugs_in():
    class Halves:
        def fit_predict(self, Z):
            return (np.arange(len(Z)) >= len(Z) // 2).astype(int)

    X, _, _ = blobs(30, 2)
    model = TopicModel(clusterer=Halves(), reducer=NoReducer(), refine_iterations=0).fit(X)
    assert model.n_topics_ == 2
    assert set(model.assigned_by_) == {ASSIGNED_CLUSTER}


def test_ten_intents_are_found_with_few_outliers(intent_data):
    texts, gold, X = intent_data
    model = TopicModel().fit(X)
    assert model.unclustered_share_ <= 0.05
    assert adjusted_rand_score(gold, model.labels_) >= 0.8
    assert 8 <= model.n_topics_ <= 14
