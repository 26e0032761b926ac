"""The topic engine's tuned defaults, as plain numbers.

A module of its own, importing nothing, so that ``turret.settings`` (read by every process) can offer
them as defaults without importing numpy and the topic package; ``turret.topics.engine`` uses them.
"""

# Why these defaults: tuned on banking77 (13k queries, 77 intents; figures in docs/topics_engine.md).
# min_cluster_size grows with n so a 200k history does not shatter into thousands of micro-topics, in
# power-of-two steps so that it does not change between two fits a few hours apart.
MIN_CLUSTER_SIZE_FLOOR = 5
MIN_CLUSTER_SIZE_DIVISOR = 400
# hdbscan's min_samples defaults to min_cluster_size, which marks a third of real data as noise; a small
# value keeps the density estimate local and leaves fewer points for outlier reduction.
MIN_SAMPLES = 5
# A noise point joins its nearest topic when cosine >= this; below it the point is "Unclustered". Measured
# at 0.35 / 0.40 / 0.45 (docs/topics_engine.md): lower thresholds cut the unclustered share of small, noisy
# data (a 150-session demo week: 2% / 6% / 14%) and move banking77 little (ARI 0.489 / 0.488 / 0.486), but
# they pull generic dialogue turns into topics and cost the SGD journeys their target (held-out JS 0.20 /
# 0.20 / 0.17). 0.45 keeps journeys right; TURRET_TOPIC_OUTLIER_THRESHOLD trades the other way.
OUTLIER_THRESHOLD = 0.45
# New texts (incremental runs) join the nearest topic at this cosine; the rest wait in the pending pool,
# where a new subject gathers and is discovered as a topic of its own.
ASSIGN_THRESHOLD = 0.45
# Spherical k-means passes seeded by the hdbscan centroids: hdbscan finds the dense cores, the passes put
# every text in its nearest topic (as incremental runs will) and lift ARI ~0.03-0.05 on banking77.
REFINE_ITERATIONS = 2
