"""The topic engine's defaults, as plain numbers.

A module of its own, importing nothing, so that ``turret.settings`` (read by every process) can offer
them as defaults without importing numpy and the topic package; ``turret.topics.engine`` uses them.

Chosen on the whole dev suite (banking77, hwu64, sgd_dev, multiwoz: four sets, each at 1k, 3k and all
texts), never on one set, with leave-one-set-out figures; ``python -m bench defaults`` reproduces the
choice and docs/topics_engine.md records the figures. Nothing here needs gold labels at run time: what
depends on the data follows from the number of texts and from the subject size the texts themselves show.
"""

# Reduction before hdbscan: UMAP (cosine) to 5 dimensions with 15 neighbours, as BERTopic does. On the same
# MiniLM vectors it separated intents far better than PCA on every set of the suite (ARI +0.05 to +0.35).
REDUCER = "umap"
REDUCER_COMPONENTS = 5
REDUCER_NEIGHBORS = 15
# Below this many texts UMAP's neighbour graph is too thin to trust: PCA to the same dimensions instead.
UMAP_MIN_TEXTS = 30

# min_cluster_size = max(FLOOR, SCALE * n' ** EXPONENT), n' = n rounded down to a power of two: 5 up to
# 1k texts, 16 at 2k-4k, 29 at 4k-8k, 55 at 8k-16k, 102 at 16k-32k. Slightly sub-linear, so topics get a
# little finer as data grows without a large history shattering into micro-topics; the power-of-two steps
# keep the value fixed between two fits a few hours apart (stable ids). On the suite the best size was
# 0.25-0.4x a gold intent's size at every sample size; within 0.01 of the best suite score this rule is the
# one with the smallest sizes (finer topics), because merging two topics is easier for a reader than finding
# one hidden inside another (bench/defaults.py).
MIN_CLUSTER_SIZE_FLOOR = 5
MIN_CLUSTER_SIZE_SCALE = 0.0165
MIN_CLUSTER_SIZE_EXPONENT = 0.9
# ...unless the texts show smaller subjects: the size a subject holds is read off how the mean similarity to
# a text's k-th nearest neighbour falls with k (it falls fastest where one subject's texts end and the next
# subject's begin), and a topic must hold SUBJECT_SIZE_FRACTION of it. Where the texts show no such scale (one
# domain of closely related intents, like banking77), the rule above stands alone. On the suite and on 141
# intents of 15-100 texts each the best size was 0.25-0.4x a gold intent's size (bench/sizes.py).
SUBJECT_SIZE_FRACTION = 1 / 3
# Texts whose neighbour ranks are read (a seeded sample), and how much faster the similarity must fall at the
# subject's edge than at the largest ranks read (an eighth of the texts, at most 1,024) to count as an edge.
SUBJECT_SIZE_PROBES = 1500
SUBJECT_SIZE_MAX_RANK = 1024
SUBJECT_SIZE_PROMINENCE = 1.05
# A fall this many times the median fall is a cliff, not an edge: groups of near-identical texts (one template
# with its slots filled, one prompt reworded), which topics should not follow. Subjects of natural texts fell
# at most 1.4x the median on every set of the suite; the demo's templated prompts fall 2.2x at 13-19 texts.
SUBJECT_SIZE_MAX_SHARPNESS = 1.75
# hdbscan's min_samples (capped at min_cluster_size).
MIN_SAMPLES = 10
# "leaf" selection of clusters from hdbscan's condensed tree: homogeneous topics at the chosen size; excess
# of mass ("eom") merged neighbouring intents more often on the suite.
CLUSTER_SELECTION = "leaf"
# A noise text joins its nearest topic at a fit when cosine >= this; below it the text is "Unclustered".
# Low on purpose: hdbscan leaves 10-30% of real texts as noise, and almost all of them belong to the topic
# they are nearest to; what is left below this is gibberish or a subject of its own.
OUTLIER_THRESHOLD = 0.25
# New texts (incremental runs) join the nearest topic at this cosine; the rest wait in the pending pool,
# where a new subject gathers and is discovered as a topic of its own.
ASSIGN_THRESHOLD = 0.35
# Spherical k-means passes seeded by the hdbscan centroids: hdbscan finds the dense cores, the passes put
# every text in its nearest topic (as incremental runs will).
REFINE_ITERATIONS = 2
# A fit clusters at most this many texts, a seeded random sample, and puts the rest in their nearest topic
# (the outlier rule, then the refinement passes over all texts). UMAP and hdbscan grow faster than linearly
# in the texts they see, the nearest-topic step linearly: a first hour of 300k texts fits in about the time
# of 50k. Every set of the dev suite is smaller, so none of its figures depends on this.
FIT_SAMPLE = 50_000
# A field needs this many texts before its first fit; until then the Unclustered row says how many more.
MIN_FIT_SIZE = 50
# Themes (parent topics): Ward linkage of the live topics' centroids, cut into round(k / TOPICS_PER_THEME)
# groups for k topics. On the suite (hwu64's scenarios, the dialogue sets' domains, the demo's subjects) Ward
# beat average linkage at every count up to k/4; k/4 and k/5 were the best fixed counts, within 0.005 of each
# other (each first in one of two fits), and k/4 kept more theme ids across a refit (98% vs 93%). Held out
# from the choice, every set scored above round(sqrt(k)) average-linkage groups (bench/themes.py).
TOPICS_PER_THEME = 4
# A topic stays in its old theme unless the group it would move to is closer (cosine to the centre of the
# group's other topics) by more than this: a refit moves centroids a little, which must not reshuffle themes.
# The smallest of 0.05 / 0.1 / 0.2 / 0.3 that kept 95% of banking77's texts in their theme through an
# incremental hour and a refit (0.2: 98%, none: 84%); on hwu64, held out, 97% (none: 93%), with the
# themes' agreement with its scenarios unchanged (bench/topics.py).
THEME_HYSTERESIS = 0.2
