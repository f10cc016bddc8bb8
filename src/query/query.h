// imsat::query — every operation both front-ends offer. One header per component:
//   engine.h              QueryEngine: search, re-rank, items, store evaluation and health
//   collections.h         Catalog: named collections in a data directory, snapshots
//   indexing.h            bulk indexing of a dataset or codes file into a store
//   protocol.h            the paper's evaluation protocol and retrieval metrics
//   recall.h              recall@k against exact neighbours
//   metric.h              a nearest-neighbour job's distance (l2, cosine) as stores apply it
//   code_health.h         bit balance, entropy and pairwise MI of codes
//   clustering_metrics.h  clustering accuracy (Hungarian) and NMI
//   codes_file.h          codes files and hex codes
//   image.h               uploaded images to model inputs, stored vectors to PNG
//   store_admin.h         creating and repairing stores
//   json_format.h         the JSON shapes of hits, items and errors (HTTP and `--json`)
// This header includes them all, for callers that use several.
#pragma once

#include "query/clustering_metrics.h"
#include "query/code_health.h"
#include "query/codes_file.h"
#include "query/collections.h"
#include "query/engine.h"
#include "query/image.h"
#include "query/indexing.h"
#include "query/json_format.h"
#include "query/metric.h"
#include "query/recall.h"
#include "query/retrieval_metrics.h"
#include "query/store_admin.h"
