/*
 * test_dist.c - processes that share batches, without MPI: threads play
 * the processes, each with its own context, model, data and trainer,
 * exchanging through an nb_comm whose allgather meets at a barrier.  The
 * comm helpers (sums in rank order, the first non-zero answer),
 * nb_trainer_set_comm's agreement and refusals, a sharded fit (the counts
 * added, every rank stopping at the same step when one asks), a resume
 * that only rank 0 reads, and the one-process world of nb_dist_*.  Once
 * the ops sum in fixed groups (an allgather reaches the comm), the ranks'
 * weights must be one process's, bit for bit.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXP 4

/* ---- a world of threads ------------------------------------------------------ */

typedef struct world {
    int size;
    pthread_barrier_t bar;
    const void *send[MAXP];
    int calls;                   /* allgathers rank 0 made */
} world;

typedef struct peer {
    world *w;
    int rank;
} peer;

static int thread_gather(void *ud, const void *send, void *recv, const size_t *bytes, char *why,
                         size_t why_size)
{
    peer *p = ud;
    world *w = p->w;
    (void)why;
    (void)why_size;
    w->send[p->rank] = send;
    if (p->rank == 0)
        w->calls++;
    pthread_barrier_wait(&w->bar);
    size_t at = 0;
    for (int r = 0; r < w->size; r++) {
        if (bytes[r] && (char *)recv + at != w->send[r])
            memmove((char *)recv + at, w->send[r], bytes[r]);
        at += bytes[r];
    }
    /* Nobody leaves before every copy is made. */
    pthread_barrier_wait(&w->bar);
    return 0;
}

static nb_comm comm_of(peer *p)
{
    return (nb_comm){p->rank, p->w->size, thread_gather, p};
}

/* Runs fn(rank) on size threads; fn's results land in its own slot. */
static void run_world(world *w, int size, void *(*fn)(void *), peer *peers)
{
    pthread_t th[MAXP];
    w->size = size;
    pthread_barrier_init(&w->bar, NULL, (unsigned)size);
    for (int r = 0; r < size; r++) {
        peers[r] = (peer){w, r};
        pthread_create(&th[r], NULL, fn, &peers[r]);
    }
    for (int r = 0; r < size; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&w->bar);
}

/* ---- the comm helpers -------------------------------------------------------- */

static int64_t sums[MAXP][3], firsts[MAXP][2];

static void *sum_thread(void *arg)
{
    peer *p = arg;
    nb_ctx *ctx = nb_ctx_new();
    nb_comm c = comm_of(p);
    int64_t v[3] = {p->rank + 1, 10 * p->rank, -1};
    int rank;
    int64_t answer = p->rank >= 1 ? 100 + p->rank : 0;
    if (nb_comm_sum_i64(ctx, &c, v, 3) == NB_OK)
        memcpy(sums[p->rank], v, sizeof v);
    if (nb_comm_first(ctx, &c, &answer, &rank) == NB_OK) {
        firsts[p->rank][0] = answer;
        firsts[p->rank][1] = rank;
    }
    nb_ctx_free(ctx);
    return NULL;
}

START_TEST(test_comm_helpers)
{
    world w = {0};
    peer peers[MAXP];
    run_world(&w, 3, sum_thread, peers);
    for (int r = 0; r < 3; r++) {
        ck_assert_int_eq(sums[r][0], 6);
        ck_assert_int_eq(sums[r][1], 30);
        ck_assert_int_eq(sums[r][2], -3);
        ck_assert_int_eq(firsts[r][0], 101); /* rank 1's, the first non-zero */
        ck_assert_int_eq(firsts[r][1], 1);
    }
    /* One process alone: nothing moves; a malformed comm is refused. */
    nb_ctx *ctx = nb_ctx_new();
    int64_t v = 5, all[1];
    ck_assert_int_eq(nb_comm_sum_i64(ctx, NULL, &v, 1), NB_OK);
    ck_assert_int_eq(v, 5);
    ck_assert_int_eq(nb_comm_gather(ctx, NULL, &v, sizeof v, all), NB_OK);
    ck_assert_int_eq(all[0], 5);
    nb_comm bad = {3, 2, thread_gather, NULL};
    ck_assert_int_eq(nb_comm_sum_i64(ctx, &bad, &v, 1), NB_ERR_ARG);
    ck_assert_str_eq(nb_errmsg(ctx), "comm_sum: comm of rank 3, size 2 is malformed");
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_one_process_world)
{
    ck_assert_int_eq(nb_dist_init(NULL, NULL), NB_OK); /* not under a launcher */
    ck_assert_int_eq(nb_dist_rank(), 0);
    ck_assert_int_eq(nb_dist_size(), 1);
    ck_assert_str_eq(nb_dist_library(), "none");
    nb_comm c = nb_dist_comm();
    ck_assert_int_eq(c.size, 1);
    char in[5] = "abcd", out[5] = "";
    size_t bytes[1] = {5};
    char why[64];
    ck_assert_int_eq(c.allgather(c.ud, in, out, bytes, why, sizeof why), 0);
    ck_assert_str_eq(out, "abcd");
    nb_dist_finalize();
}
END_TEST

/* ---- trainers sharing batches -------------------------------------------------- */

/* Batches of 32 (two groups of 16), 70 examples: 14 validate, 56 train
 * in batches of 32 and 24; conv, batch norm, dropout and adam. */
static const char net_fmt[] =
    "{\"name\": \"net\", \"input\": [1, 4, 4], \"layers\": ["
    "{\"type\": \"conv2d\", \"out_channels\": 2, \"kernel_size\": 3, \"padding\": 1},"
    "{\"type\": \"batch_norm\"}, {\"type\": \"relu\"},"
    "{\"type\": \"flatten\"}, {\"type\": \"dropout\", \"p\": 0.25},"
    "{\"type\": \"linear\", \"out_features\": %d}],"
    " \"loss\": {\"type\": \"cross_entropy\"},"
    " \"optimizer\": {\"type\": \"adam\", \"lr\": %g},"
    " \"training\": {\"batch_size\": %d, \"epochs\": 2, \"validation_split\": 0.2, \"seed\": 3}}";
#define NEX 70

/* The same shape of training for an autoencoder: outputs 16, its images
 * its targets (normalised, cropped and flipped). */
static const char ae_fmt[] =
    "{\"name\": \"ae\", \"input\": [1, 4, 4], \"layers\": ["
    "{\"type\": \"conv2d\", \"out_channels\": 2, \"kernel_size\": 3, \"padding\": 1},"
    "{\"type\": \"batch_norm\"}, {\"type\": \"relu\"},"
    "{\"type\": \"flatten\"}, {\"type\": \"dropout\", \"p\": 0.25},"
    "{\"type\": \"linear\", \"out_features\": %d}],"
    " \"loss\": {\"type\": \"mse\"},"
    " \"optimizer\": {\"type\": \"adam\", \"lr\": %g},"
    " \"training\": {\"batch_size\": %d, \"epochs\": 2, \"validation_split\": 0.2, \"seed\": 3,"
    " \"target\": \"input\", \"normalize\": {\"mean\": 0.3, \"std\": 0.4},"
    " \"random_crop\": {\"padding\": 1}, \"hflip\": 0.5}}";

static nb_dataset *net_data(nb_ctx *ctx)
{
    uint8_t px[NEX * 16];
    int32_t labels[NEX];
    for (int i = 0; i < NEX; i++) {
        labels[i] = i % 3;
        for (int k = 0; k < 16; k++)
            px[i * 16 + k] = (uint8_t)((i * 31 + k * 7) % 97 + (k % 3 == labels[i] ? 120 : 0));
    }
    return nb_dataset_from(ctx, NEX, 1, 4, 4, px, labels);
}

/* What a rank does, and what it found. */
typedef struct job {
    double lr;                  /* its settings: lr, outputs and batch size */
    int outputs, batch;
    bool ae;                    /* ae_fmt's autoencoder instead of net_fmt's net */
    int stop_at;                /* its on_batch asks to stop after this step, 0 never */
    const char *resume;         /* a checkpoint to resume (rank 0's path), or NULL */
    const char *save;           /* where rank 0 saves after the fit, or NULL */
    int set_rc, fit_rc, resume_rc;
    char msg[512];
    nb_train_progress p;
    unsigned char weights[4096];
    size_t nweights;
    nb_ctx *ctx;
    uint64_t allocs[2];         /* the allocator's calls after epochs 1 and 2 */
} job;

static job jobs[MAXP];

static int stop_batch(nb_trainer *tr, const nb_train_progress *p, void *ud)
{
    (void)tr;
    const job *j = ud;
    return j->stop_at && p->steps == j->stop_at;
}

static int count_allocs(nb_trainer *tr, const nb_epoch_metrics *e, void *ud)
{
    (void)tr;
    job *j = ud;
    if (e->epoch <= 2)
        j->allocs[e->epoch - 1] = nb_alloc_count(j->ctx);
    return 0;
}

/* One rank (or, with p NULL, a process alone): a trainer of the net on
 * the data, shared through the world, fit, and its results in j. */
static void train_one(peer *p, job *j)
{
    nb_ctx *ctx = j->ctx = nb_ctx_new();
    char json[2048];
    snprintf(json, sizeof json, j->ae ? ae_fmt : net_fmt, j->outputs, j->lr, j->batch);
    nb_model *m = nb_model_parse(ctx, json, strlen(json), "net.json", NB_F32);
    nb_dataset *ds = net_data(ctx);
    nb_train_opts t;
    nb_optim_opts o;
    nb_model_train_opts(ctx, m, &t, &o);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_model_init(m, &rng);
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, 0, &t, &o);
    nb_comm c = p ? comm_of(p) : (nb_comm){0, 1, NULL, NULL};
    j->set_rc = nb_trainer_set_comm(tr, p ? &c : NULL);
    snprintf(j->msg, sizeof j->msg, "%s", nb_errmsg(ctx));
    if (j->set_rc == NB_OK && j->resume) {
        /* Only rank 0 reads the path: the others' is nowhere. */
        j->resume_rc = nb_trainer_resume(tr, !p || p->rank == 0 ? j->resume : "/nowhere");
        snprintf(j->msg, sizeof j->msg, "%s", nb_errmsg(ctx));
    }
    if (j->set_rc == NB_OK && j->resume_rc == NB_OK) {
        nb_trainer_callbacks cb = {stop_batch, count_allocs, j};
        j->fit_rc = nb_trainer_fit(tr, &cb);
        j->p = *nb_trainer_progress(tr);
        if (j->save && (!p || p->rank == 0))
            nb_trainer_save(tr, j->save);
        for (int i = 0; i < nb_model_num_tensors(m); i++) {
            const nb_tensor *w = nb_model_tensor(m, i);
            size_t n = (size_t)w->numel * sizeof(float);
            if (j->nweights + n <= sizeof j->weights)
                memcpy(j->weights + j->nweights, w->data, n);
            j->nweights += n;
        }
    }
    nb_trainer_free(tr);
    nb_dataset_free(ds);
    nb_model_free(m);
    nb_ctx_free(ctx);
}

static void *train_thread(void *arg)
{
    peer *p = arg;
    train_one(p, &jobs[p->rank]);
    return NULL;
}

static job plain(void)
{
    return (job){.lr = 0.01, .outputs = 3, .batch = 32};
}

START_TEST(test_set_comm_refuses)
{
    nb_set_num_threads(1);
    static const struct {
        int which; /* 0 lr, 1 outputs, 2 batch size 16 for both */
        const char *text;
    } cases[] = {
        {0, "rank 1's lr is 0.02, rank 0's 0.01: every process must run with the same settings"},
        {1, "rank 1's model is not rank 0's (digest "},
        {2, "2 processes share batches of 16 examples, whose 1 group of 16 keeps at most 1 busy"},
    };
    world w = {0};
    peer peers[MAXP];
    jobs[0] = jobs[1] = plain();
    if (cases[_i].which == 0)
        jobs[1].lr = 0.02;
    else if (cases[_i].which == 1)
        jobs[1].outputs = 4;
    else
        jobs[0].batch = jobs[1].batch = 16;
    run_world(&w, 2, train_thread, peers);
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(jobs[r].set_rc, NB_ERR_ARG);
        ck_assert_msg(strstr(jobs[r].msg, cases[_i].text), "rank %d: %s", r, jobs[r].msg);
    }
}
END_TEST

static int count_gather(void *ud, const void *send, void *recv, const size_t *bytes, char *why,
                        size_t why_size)
{
    (void)why;
    (void)why_size;
    ++*(int *)ud;
    memmove(recv, send, bytes[0]);
    return 0;
}

/* The ops sum a batch's examples in fixed groups, exchanged through the
 * comm (lib/batch.c's nbi_batch_sum): a linear layer's weight gradient
 * then calls the allgather.  Until they do, sharded weights are not one
 * process's and are not compared. */
static bool ops_exchange(void)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t xs[] = {16, 3}, ws[] = {2, 3};
    nb_tensor *x = nb_tensor_full(ctx, NB_F32, 2, xs, 0.5);
    nb_tensor *w = nb_tensor_full(ctx, NB_F32, 2, ws, 0.25);
    nb_requires_grad(w, true);
    int calls = 0;
    nb_comm c = {0, 1, count_gather, &calls};
    nb_ctx_set_batch(ctx, 16, &c);
    nb_backward(ctx, nb_sum(ctx, nb_linear(ctx, x, w, NULL)));
    nb_ctx_free(ctx);
    return calls > 0;
}

START_TEST(test_sharded_fit)
{
    nb_set_num_threads(1);
    /* 2 processes on batches of 32 and 24; 3 on 48 and 8 (empty shares);
     * the net, then the autoencoder. */
    int size = 2 + _i % 2;
    job one = plain();
    one.batch = 16 * size;
    one.ae = _i >= 2;
    one.outputs = one.ae ? 16 : one.outputs;
    train_one(NULL, &one);
    ck_assert_int_eq(one.fit_rc, NB_OK);
    world w = {0};
    peer peers[MAXP];
    for (int r = 0; r < size; r++) {
        jobs[r] = plain();
        jobs[r].batch = one.batch;
        jobs[r].ae = one.ae;
        jobs[r].outputs = one.outputs;
    }
    run_world(&w, size, train_thread, peers);
    for (int r = 0; r < size; r++) {
        ck_assert_msg(!jobs[r].set_rc && !jobs[r].fit_rc, "rank %d: %s", r,
                      jobs[r].msg);
        /* Counts over the whole batches, the same on every rank. */
        ck_assert_int_eq(jobs[r].p.epoch, 2);
        ck_assert_int_eq(jobs[r].p.steps, one.p.steps);
        ck_assert_int_eq(jobs[r].p.correct, jobs[0].p.correct);
        ck_assert_int_eq(jobs[r].nweights, one.nweights);
        /* The second epoch allocates nothing: its steps and validation are warm. */
        ck_assert_uint_eq(jobs[r].allocs[1], jobs[r].allocs[0]);
        if (ops_exchange()) {
            ck_assert(memcmp(jobs[r].weights, one.weights, one.nweights) == 0);
            ck_assert_int_eq(jobs[r].p.correct, one.p.correct);
        }
    }
}
END_TEST

/* Batches of 48 and 8.  Rank 1 of 2 asks to stop after step 3: every rank
 * stops there; the checkpoint rank 0 wrote then resumes on 3 ranks, only
 * rank 0 reading it. */
START_TEST(test_stop_and_resume)
{
    nb_set_num_threads(1);
    char path[64];
    snprintf(path, sizeof path, "/tmp/nabla-dist-%d.safetensors", (int)getpid());
    world w = {0};
    peer peers[MAXP];
    jobs[0] = jobs[1] = plain();
    jobs[0].batch = jobs[1].batch = 48;
    jobs[1].stop_at = 3;
    jobs[0].save = path;
    run_world(&w, 2, train_thread, peers);
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(jobs[r].fit_rc, NB_TRAIN_STOPPED);
        ck_assert_int_eq(jobs[r].p.steps, 3);
        ck_assert_int_eq(jobs[r].p.epoch, 1); /* epoch 2, batch 1 */
        ck_assert_int_eq(jobs[r].p.batch, 1);
        ck_assert_int_eq(jobs[r].p.seen, 48);
    }
    world w3 = {0};
    for (int r = 0; r < 3; r++) {
        jobs[r] = plain();
        jobs[r].batch = 48;
        jobs[r].resume = path;
    }
    run_world(&w3, 3, train_thread, peers);
    for (int r = 0; r < 3; r++) {
        ck_assert_msg(!jobs[r].set_rc && !jobs[r].resume_rc && !jobs[r].fit_rc, "rank %d: %s", r,
                      jobs[r].msg);
        ck_assert_int_eq(jobs[r].p.steps, 4);
        ck_assert_int_eq(jobs[r].p.epoch, 2);
    }
    job one = plain();
    one.batch = 48;
    train_one(NULL, &one);
    if (ops_exchange())
        ck_assert(memcmp(jobs[2].weights, one.weights, one.nweights) == 0);
    /* A checkpoint rank 0 cannot read fails every rank, naming it. */
    remove(path);
    world w2 = {0};
    jobs[0] = jobs[1] = plain();
    jobs[0].resume = jobs[1].resume = path;
    run_world(&w2, 2, train_thread, peers);
    ck_assert_int_eq(jobs[0].resume_rc, NB_ERR_IO);
    ck_assert_int_eq(jobs[1].resume_rc, NB_ERR_IO);
    ck_assert_msg(strstr(jobs[1].msg, "rank 0 could not read it"), "%s", jobs[1].msg);
}
END_TEST

Suite *tst_suite_dist(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("comm");
    tcase_add_test(tc, test_comm_helpers);
    tcase_add_test(tc, test_one_process_world);
    suite_add_tcase(s, tc);
    tc = tcase_create("trainer");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_set_comm_refuses, 0, 3);
    tcase_add_loop_test(tc, test_sharded_fit, 0, 4);
    tcase_add_test(tc, test_stop_and_resume);
    suite_add_tcase(s, tc);
    return s;
}
