/*
 * cmd_train.c - `nabla train`: trains a model file on a data set, with a
 * progress bar, validation after each epoch, checkpoints that resume to the
 * same weights, metrics.csv and curves.png.
 *
 * The run directory is consistent at every instant: the checkpoint, written
 * first after each epoch (atomically, as every file here), carries the
 * metrics of every epoch done, and a resumed run rebuilds metrics.csv and
 * curves.png from it, so a kill between two writes loses nothing.  A lock
 * (DIR/train.lock, flock) keeps a second run off the directory while one
 * runs; the run that holds it removes what killed runs left of their
 * temporaries.  SIGINT, SIGTERM and SIGHUP finish the batch, write the
 * checkpoint and exit with 128 + the signal.
 *
 * Under mpirun each process trains its share of every batch (the trainer's
 * nb_trainer_set_comm) and rank 0 alone prints, holds the directory and
 * writes its files.  Until training starts, a failure waits for the
 * others' (agree): the first in rank order is the job's, one line, and
 * every process exits with its code.  Once it runs, a process that fails
 * may leave the others waiting in an exchange, so it ends the job
 * (fatal: nb_dist_abort).  A stop signal on any process stops them all
 * after the same batch (the trainer agrees on the callbacks' answers).
 */
#include "cli.h"
#include "plot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static cli_opt opts[] = {
    {"data", "D", "the data: fashion-mnist (the default, Debian's\n"
                  "/usr/share/datasets/fashion-mnist), a folder of the four IDX files,\n"
                  "of CIFAR-10 or CIFAR-100 binary files, or of PNGs in train/CLASS/\n"
                  "and test/CLASS/ (gray or colour), or an .npz file", NULL},
    {"epochs", "N", "epochs to train (default: the model file's, else 5)", NULL},
    {"batch-size", "N", "examples per step (default: the model file's, else 64)", NULL},
    {"lr", "X", "learning rate (default: the model file's optimizer's)", NULL},
    {"optimizer", "NAME", "sgd, adam, adamw or rmsprop, with PyTorch's defaults\n"
                          "(default: the model file's, else sgd)", NULL},
    {"seed", "N", "seeds the initial weights, the shuffles, dropout and augmentation\n"
                  "(default: the model file's, else 0)", NULL},
    {"threads", "N", "threads to run on (default: NABLA_NUM_THREADS, else every core)",
     NULL},
    {"out", "DIR", "where to write weights, checkpoint, metrics.csv and curves.png\n"
                   "(default: runs/<model name>)", NULL},
    {"resume", NULL, "continue from DIR/checkpoint.safetensors, made with the same\n"
                     "settings, data and threads (--epochs may grow)", NULL},
    {"limit", "N", "use only the first N training examples and N/4 test examples", NULL},
    {"validation-split", "F", "validate on the last fraction F of the training examples\n"
                              "(default: the model file's, else 0; a DIR/val/ folder or an\n"
                              ".npz's X_valid is the validation set instead)", NULL},
    {"weights", "W", "start from the weights in W (a safetensors file: nabla's or a\n"
                     "PyTorch state_dict's) instead of drawing them", NULL},
    {"partial", NULL, "with --weights: load the tensors whose names and shapes match,\n"
                      "list the rest, and draw those", NULL},
    {"freeze", "NAMES", "keep these layers' parameters fixed (comma-separated names;\n"
                        "as \"trainable\": false in the model file)", NULL},
    {"freeze-stats", NULL, "the batch norms in --freeze also keep their running statistics\n"
                           "and normalise by them", NULL},
    {"early-stopping", "P", "stop after P epochs without improvement of val_loss (or the\n"
                            "file's early_stopping monitor) and restore the best weights", NULL},
    {"reduce-lr-on-plateau", "P", "multiply the rate by 0.1 (or the file's factor) after P\n"
                                  "epochs without improvement of val_loss", NULL},
    {"keep-best", "MONITOR", "write DIR/best.safetensors whenever MONITOR (val_loss,\n"
                             "val_accuracy, loss or accuracy) improves", NULL},
    {"warmup", "N", "raise the rate linearly over the first N epochs", NULL},
    {"warmup-steps", "N", "raise the rate linearly over the first N steps", NULL},
    {"target", "WHAT", "what each example is trained towards: label (its class) or input\n"
                       "(its own image, for an autoencoder with an mse loss; default: the\n"
                       "model file's \"target\", else label)", NULL},
    {"checkpoint-every", "N", "also write the checkpoint every N batches (default: after\n"
                              "each epoch only)", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json [options]",
    .about = "Trains the model on the data set's training images and reports the\n"
             "accuracy on its test images.  The model file's \"optimizer\" and\n"
             "\"training\" sections give the settings; options override them.\n"
             "Ctrl-C (SIGINT), SIGTERM and SIGHUP finish the current batch, write a\n"
             "checkpoint and stop; --resume then continues to the same weights as an\n"
             "uninterrupted run.  One run at a time may use an --out directory.\n"
             "\n"
             "Data-parallel: `mpirun -np P nabla train MODEL.json [options]` (in a\n"
             "build with MPI) shares each batch among P processes, each with the\n"
             "data at its --data, and ends with the same weights as one process;\n"
             "rank 0 prints and writes the files.  See docs/distributed.md.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

/* The first signal that asked the run to stop, or 0. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    if (!interrupted)
        interrupted = sig;
}

/* The signals that stop a run cleanly, in the order of `old`. */
static const int stop_signals[3] = {SIGINT, SIGTERM, SIGHUP};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The options that turn on a callback, over the model file's settings. */
static int callback_settings(nb_train_opts *t)
{
    int64_t es = -1, plateau = -1, warmup = 0, warmup_steps = 0;
    int rc;
    if ((rc = cli_int64(&spec, "early-stopping", 0, 1000000, &es)) ||
        (rc = cli_int64(&spec, "reduce-lr-on-plateau", 0, 1000000, &plateau)) ||
        (rc = cli_int64(&spec, "warmup", 1, 1000000, &warmup)) ||
        (rc = cli_int64(&spec, "warmup-steps", 1, 1000000000, &warmup_steps)))
        return rc;
    const char *split = cli_get(&spec, "validation-split");
    if (split) {
        char *end;
        double f = strtod(split, &end);
        if (!*split || *end || !(f >= 0 && f <= 0.99))
            return cli_fail(CLI_USAGE, "--validation-split: expected a fraction from 0 to 0.99, "
                                       "got '%s'", split);
        t->validation_split = f;
    }
    if (es >= 0) {
        t->early_stopping.patience = (int)es;
        if (!t->early_stopping.monitor)
            t->early_stopping.monitor = NB_MONITOR_VAL_LOSS;
    }
    if (plateau >= 0) {
        t->plateau.patience = (int)plateau;
        if (!t->plateau.monitor)
            t->plateau.monitor = NB_MONITOR_VAL_LOSS;
    }
    if (warmup || warmup_steps) {
        if (warmup && warmup_steps)
            return cli_fail(CLI_USAGE, "--warmup and --warmup-steps: give one of them");
        t->warmup_epochs = (int)warmup;
        t->warmup_steps = (int)warmup_steps;
    }
    const char *keep = cli_get(&spec, "keep-best");
    if (keep) {
        int m = nb_monitor_from_name(keep);
        if (m <= NB_MONITOR_NONE)
            return cli_fail(CLI_USAGE, "--keep-best: unknown monitor '%s' (val_loss, "
                                       "val_accuracy, loss, accuracy)", keep);
        t->keep_best = (nb_monitor)m;
    }
    return CLI_OK;
}

/* --freeze NAME,...: each layer named, its statistics too with
 * --freeze-stats when it is a batch norm. */
static int freeze_layers(nb_ctx *ctx, nb_model *m)
{
    const char *list = cli_get(&spec, "freeze");
    bool stats = cli_get(&spec, "freeze-stats") != NULL;
    if (!list)
        return stats ? cli_fail(CLI_USAGE, "--freeze-stats: name the layers with --freeze")
                     : CLI_OK;
    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ",");
        char name[128];
        if (n == 0 || n >= sizeof name)
            return cli_fail(CLI_USAGE, "--freeze: expected layer names separated by commas, "
                                       "got '%s'", list);
        memcpy(name, s, n);
        name[n] = '\0';
        nb_layer_info info = {0};
        int i = 0, nl = nb_model_num_layers(m);
        while (i < nl && (nb_model_layer(m, i, &info), strcmp(info.name, name) != 0))
            i++;
        bool bn = i < nl && strcmp(info.type, "batch_norm") == 0;
        if (nb_model_freeze(m, name, stats && bn) != NB_OK)
            return cli_fail_lib(ctx, true);
        s += n + (s[n] == ',');
    }
    return CLI_OK;
}

/* --weights W: all of the model's tensors from W, or with --partial those
 * W has with the same name and shape, listing the rest on stderr. */
static int start_weights(nb_ctx *ctx, nb_model *m, const char *path)
{
    if (!cli_get(&spec, "partial"))
        return nb_model_load_weights(m, path) != NB_OK ? cli_fail_lib(ctx, true) : CLI_OK;
    nb_safetensors *f = nb_safetensors_open(ctx, path);
    if (!f)
        return cli_fail_lib(ctx, true);
    int n = nb_model_num_tensors(m), loaded = 0, nf = nb_safetensors_count(f);
    bool *used = calloc((size_t)nf + 1, sizeof *used); /* + 1: never calloc(0) */
    if (!used) {
        nb_safetensors_close(f);
        return cli_fail(CLI_RUNTIME, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        nb_tensor *t = nb_model_tensor(m, i);
        int k = nb_safetensors_find(f, t->name);
        bool ok = k >= 0 && nb_safetensors_read(ctx, f, 1, &t, false) == NB_OK;
        if (k >= 0)
            used[k] = true; /* named below if it is not loaded */
        if (ok)
            loaded++;
        else
            fprintf(stderr, "--partial: %s %s: drawn\n", t->name,
                    k < 0 ? "is not in the file" : "has another shape or type there");
    }
    for (int k = 0; k < nf; k++)
        if (!used[k])
            fprintf(stderr, "--partial: %s in %s: not used\n", nb_safetensors_name(f, k), path);
    fprintf(stderr, "--partial: loaded %d of the model's %d tensors from %s\n", loaded, n, path);
    free(used);
    nb_safetensors_close(f);
    return CLI_OK;
}

/* Settings from the model file, then from the command line. */
static int settings(nb_ctx *ctx, nb_model *m, nb_train_opts *t, nb_optim_opts *o)
{
    if (nb_model_train_opts(ctx, m, t, o) != NB_OK)
        return cli_fail_lib(ctx, true);
    const char *name = cli_get(&spec, "optimizer");
    if (name) {
        int kind = nb_optim_kind_from_name(name);
        if (kind < 0)
            return cli_fail(CLI_USAGE, "--optimizer: unknown optimizer '%s' (sgd, adam, adamw, "
                                       "rmsprop)", name);
        if (kind != (int)o->kind)
            *o = nb_optim_defaults((nb_optim_kind)kind);
    }
    int64_t epochs = t->epochs, batch = t->batch_size;
    uint64_t seed = t->seed;
    int rc;
    if ((rc = cli_int64(&spec, "epochs", 1, 1000000, &epochs)) ||
        (rc = cli_int64(&spec, "batch-size", 1, 1 << 20, &batch)) ||
        (rc = cli_uint64(&spec, "seed", &seed)) ||
        (rc = cli_positive(&spec, "lr", &o->lr)))
        return rc;
    t->epochs = (int)epochs;
    t->batch_size = (int)batch;
    t->seed = seed;
    const char *target = cli_get(&spec, "target");
    if (target) {
        int k = nb_target_from_name(target);
        if (k < 0)
            return cli_fail(CLI_USAGE, "--target: expected label or input, got '%s'", target);
        t->target = (nb_target)k;
    }
    return callback_settings(t);
}

/* ---- output files -------------------------------------------------------- */

/* metrics.csv, rewritten whole after each epoch (it is small), atomically
 * as the library writes its files; without accuracy columns when there is
 * no accuracy (the input as target). */
static int write_metrics(nb_ctx *ctx, const char *dir, const nb_epoch_metrics *h, int n, bool acc)
{
    char path[4200], *csv = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = open_memstream(&csv, &len);
    if (!f)
        return cli_fail(CLI_RUNTIME, "out of memory");
    /* best: keep_best's mark; restored: the epoch whose weights early
     * stopping put back, on the row where it stopped. */
    if (acc)
        fprintf(f, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,best,"
                   "restored\n");
    else
        fprintf(f, "epoch,train_loss,val_loss,lr,seconds,best,restored\n");
    for (int i = 0; i < n; i++)
        if (acc)
            fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%d,%d\n", i + 1, h[i].loss,
                    h[i].accuracy, h[i].val_loss, h[i].val_accuracy, h[i].lr, h[i].seconds,
                    h[i].best, h[i].restored);
        else
            fprintf(f, "%d,%.6f,%.6f,%.6g,%.3f,%d,%d\n", i + 1, h[i].loss, h[i].val_loss,
                    h[i].lr, h[i].seconds, h[i].best, h[i].restored);
    int rc = fclose(f) != 0 ? cli_fail(CLI_RUNTIME, "out of memory")
             : nb_file_write(ctx, path, csv, len) != NB_OK ? cli_fail_lib(ctx, false)
                                                          : CLI_OK;
    free(csv);
    return rc;
}

static int write_curves(const char *dir, const char *name, const nb_epoch_metrics *h, int n,
                        nb_ctx *ctx, bool has_val, bool with_acc)
{
    char path[4200], title[256];
    snprintf(path, sizeof path, "%s/curves.png", dir);
    int at = snprintf(title, sizeof title, "%s - %d epoch%s", name, n, n == 1 ? "" : "s");
    if (n > 0 && h[n - 1].stopped)
        at += snprintf(title + at, sizeof title - (size_t)at, ", stopped early");
    if (n > 0 && h[n - 1].restored)
        snprintf(title + at, sizeof title - (size_t)at, ", weights of epoch %d kept",
                 h[n - 1].restored);
    double loss[1000], vloss[1000], acc[1000], vacc[1000];
    int k = n < 1000 ? n : 1000;
    for (int i = 0; i < k; i++) {
        loss[i] = h[i].loss;
        vloss[i] = h[i].val_loss;
        acc[i] = h[i].accuracy;
        vacc[i] = h[i].val_accuracy;
    }
    plot_series ls[2] = {{"training", loss, k, PLOT_BLUE, false},
                         {"validation", vloss, k, PLOT_ORANGE, true}};
    plot_series as[2] = {{"training", acc, k, PLOT_BLUE, false},
                         {"validation", vacc, k, PLOT_ORANGE, true}};
    int nacc = !with_acc ? 0 : has_val ? 2 : 1; /* no accuracy panel without accuracy */
    if (plot_curves(ctx, path, title, ls, has_val ? 2 : 1, as, nacc) != NB_OK)
        return cli_fail_lib(ctx, false);
    return CLI_OK;
}

/* metrics.csv and curves.png of the epochs done, from the trainer's
 * history: after each epoch, and on resuming, as the checkpoint has them. */
static int write_history(nb_ctx *ctx, nb_trainer *tr, const char *dir, const char *name,
                         bool acc)
{
    int n;
    const nb_epoch_metrics *h = nb_trainer_history(tr, &n);
    int rc = write_metrics(ctx, dir, h, n, acc);
    return rc != CLI_OK ? rc
                        : write_curves(dir, name, h, n, ctx, nb_trainer_num_val(tr) > 0, acc);
}

/* Whether the run counts an accuracy: not with the input as target. */
static bool has_accuracy(const nb_train_opts *t)
{
    return t->target != NB_TARGET_INPUT;
}

/* ---- a run ------------------------------------------------------------------ */

/* What a run holds, and what its callbacks share. */
typedef struct run {
    nb_ctx *ctx;
    nb_model *m;
    nb_train_opts t;
    nb_optim_opts o;
    const char *data;          /* the data directory */
    nb_dataset *train, *test;  /* test NULL while training runs */
    int64_t test_limit;        /* test examples to take, 0 for all */
    int64_t ntest;             /* and how many that is */
    nb_trainer *tr;
    cli_classes classes;       /* the data's, stored with the weights */
    char dir[4096], ckpt[4200], weights[4200], best[4200];
    int64_t ckpt_every;        /* --checkpoint-every: batches, 0 none */
    int lock;                  /* the descriptor holding DIR/train.lock, or -1 */
    int rank, size;            /* this process of an mpirun job's */
    nb_comm comm;              /* the job's processes (nb_dist_comm) */
    bool tty;                  /* stderr is a terminal: a progress bar */
    bool bar;                  /* a progress line is drawn and not ended */
    double last_shown;         /* when it was drawn */
    int rc;                    /* the exit code of a failure a callback printed */
} run;

static int fatal(run *r, int rc);
static int agree(run *r, int rc);

/* ---- the run directory -------------------------------------------------------- */

/* DIR/train.lock, locked (flock) until the process ends however it ends:
 * a second run on the directory refuses to start. */
static int lock_dir(run *r)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/train.lock", r->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return cli_fail(CLI_RUNTIME, "%s: cannot create: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        close(fd);
        if (err == EWOULDBLOCK)
            return cli_fail(CLI_USAGE, "%s: another nabla train is running on this directory "
                                       "(it holds train.lock): wait for it, or use another --out",
                            r->dir);
        return cli_fail(CLI_RUNTIME, "%s: cannot lock: %s", path, strerror(err));
    }
    r->lock = fd;
    return CLI_OK;
}

/* ".tmp.<pid>.<n>": what the library appends to a file's name while it
 * writes it. */
static bool tmp_suffix(const char *s)
{
    if (strncmp(s, ".tmp.", 5) != 0)
        return false;
    s += 5;
    for (int part = 0; part < 2; part++) {
        const char *d = s;
        while (*s >= '0' && *s <= '9')
            s++;
        if (s == d || *s != (part ? '\0' : '.'))
            return false;
        s += !part;
    }
    return true;
}

/* Removes the temporaries of the run's files that killed runs left; no
 * other run writes them while the lock is held. */
static void remove_stale(const run *r)
{
    static const char *const files[] = {"checkpoint.safetensors", "weights.safetensors",
                                        "best.safetensors", "metrics.csv", "curves.png"};
    DIR *d = opendir(r->dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));)
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            size_t n = strlen(files[i]);
            if (strncmp(e->d_name, files[i], n) == 0 && tmp_suffix(e->d_name + n)) {
                char path[4400];
                snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
                unlink(path);
            }
        }
    closedir(d);
}

/* The output directory, made, locked and cleaned: rank 0's alone. */
static int open_dir(run *r)
{
    const char *out = cli_get(&spec, "out");
    snprintf(r->dir, sizeof r->dir, out ? "%s" : "runs/%s", out ? out : nb_model_name(r->m));
    snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.safetensors", r->dir);
    snprintf(r->weights, sizeof r->weights, "%s/weights.safetensors", r->dir);
    snprintf(r->best, sizeof r->best, "%s/best.safetensors", r->dir);
    if (r->rank != 0)
        return CLI_OK;
    int rc = cli_make_dir(r->dir);
    if (rc == CLI_OK && (rc = lock_dir(r)) == CLI_OK)
        remove_stale(r);
    return rc;
}

/* ---- opening and closing ------------------------------------------------------- */

/* The data: the training images for the trainer, the test images checked
 * now and set aside until training is over, so that only the training set
 * is in memory while it runs. */
static int open_data(run *r, int64_t limit)
{
    nb_ctx *ctx = r->ctx;
    r->data = cli_data_dir(cli_get(&spec, "data"));
    if (!(r->train = nb_dataset_load(ctx, r->data, true)) ||
        !(r->test = nb_dataset_load(ctx, r->data, false)))
        return cli_fail_lib(ctx, true);
    /* The data's own validation split (DIR/val/, an .npz's X_valid) takes
     * the place of the model file's validation_split; --validation-split
     * with it is refused by the trainer. */
    if (nb_dataset_validation(r->train) > 0 && !cli_get(&spec, "validation-split"))
        r->t.validation_split = 0;
    r->tr = nb_trainer_new(ctx, r->m, r->train, limit, &r->t, &r->o);
    if (!r->tr)
        return cli_fail_lib(ctx, true);
    /* --limit N tests on N/4 examples, at least one. */
    r->test_limit = limit > 0 ? (limit / 4 > 0 ? limit / 4 : 1) : 0;
    if ((r->ntest = nb_trainer_examples(r->tr, r->test, r->test_limit)) < 0)
        return cli_fail_lib(ctx, true);
    int rc = cli_classes_of_data(&r->classes, r->train, cli_is_fashion(r->data), &r->t,
                                 has_accuracy(&r->t) ? cli_model_classes(r->m) : 0);
    if (rc != CLI_OK)
        return rc;
    nb_dataset_free(r->test);
    r->test = NULL;
    return CLI_OK;
}

/* The model with its first weights, the settings, the data and the
 * trainer, then the output directory (locked before anything is read from
 * it). */
static int run_open(run *r, const char *model, int64_t limit)
{
    nb_ctx *ctx = r->ctx;
    r->m = nb_model_load(ctx, model, NB_F32);
    if (!r->m)
        return cli_fail_lib(ctx, true);
    int rc = settings(ctx, r->m, &r->t, &r->o);
    if (rc != CLI_OK)
        return rc;
    /* A model and batch that cannot fit are refused before the data loads. */
    if (nb_model_check_memory(r->m, r->t.batch_size, &r->o) != NB_OK)
        return cli_fail_lib(ctx, false);
    nb_rng init;
    nb_rng_seed(&init, r->t.seed);
    nb_model_init(r->m, &init);
    const char *weights = cli_get(&spec, "weights");
    if (cli_get(&spec, "partial") && !weights)
        return cli_fail(CLI_USAGE, "--partial: give the weights with --weights");
    if ((weights && (rc = start_weights(ctx, r->m, weights)) != CLI_OK) ||
        (rc = freeze_layers(ctx, r->m)) != CLI_OK)
        return rc;
    /* The directory after the data: a run refused for its input leaves
     * nothing behind. */
    if ((rc = open_data(r, limit)) != CLI_OK || (rc = open_dir(r)) != CLI_OK)
        return rc;
    r->tty = r->rank == 0 && isatty(fileno(stderr));
    return CLI_OK;
}

static void run_close(run *r)
{
    nb_trainer_free(r->tr);
    nb_dataset_free(r->train);
    nb_dataset_free(r->test);
    nb_model_free(r->m);
    cli_classes_free(&r->classes);
    if (r->lock >= 0)
        close(r->lock);
}

/* --resume: the checkpoint (none yet: a run killed before its first
 * starts again), then metrics.csv and curves.png as it has them. */
static int run_resume(run *r)
{
    /* Rank 0's directory says, for every process: 1 none, 2 one. */
    int64_t found = 0;
    if (r->rank == 0)
        found = access(r->ckpt, F_OK) != 0 && errno == ENOENT ? 1 : 2;
    if (nb_comm_first(r->ctx, &r->comm, &found, NULL) != NB_OK)
        return cli_fail_lib(r->ctx, false);
    if (found == 1) {
        if (r->rank == 0)
            fprintf(stderr, "resuming %s: no checkpoint yet, training from the start\n", r->dir);
        return CLI_OK;
    }
    /* Under mpirun rank 0 reads it and sends it to the others. */
    if (nb_trainer_resume(r->tr, r->ckpt) != NB_OK)
        return cli_fail_lib(r->ctx, true);
    if (r->rank != 0)
        return CLI_OK;
    const nb_train_progress *p = nb_trainer_progress(r->tr);
    if (p->epoch > 0) {
        int rc = write_history(r->ctx, r->tr, r->dir, nb_model_name(r->m), has_accuracy(&r->t));
        if (rc != CLI_OK)
            return rc;
    }
    if (p->epoch == r->t.epochs)
        fprintf(stderr, "resuming %s: all %d epoch%s done, testing the trained weights\n",
                r->dir, p->epoch, p->epoch == 1 ? " is" : "s are");
    else
        fprintf(stderr, "resuming %s from epoch %d, batch %" PRId64 "\n", r->dir, p->epoch + 1,
                p->batch);
    return CLI_OK;
}

/* ---- while it trains ---------------------------------------------------------- */

/* Ends the progress line, if one is drawn. */
static void end_bar(run *r)
{
    if (r->bar)
        fputc('\n', stderr);
    r->bar = false;
}

/* One line, redrawn: "epoch 2/5 [=====>....] 412/938 loss 0.5123 acc 0.8123
 * 3120 img/s 0:12 left". */
static void show_progress(const run *r, const nb_train_progress *p)
{
    int width = 24, fill = p->batches ? (int)(width * p->batch / p->batches) : width;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : '.';
    bar[width] = '\0';
    double rate = (double)p->seen / (p->seconds + 1e-9);
    int64_t done = p->batch, total = p->batches;
    int left = done ? (int)(p->seconds * (double)(total - done) / (double)done + 0.5) : 0;
    fprintf(stderr, "\repoch %d/%d [%s] %" PRId64 "/%" PRId64 " loss %.4f", p->epoch + 1,
            r->t.epochs, bar, done, total, p->loss_sum / (double)p->seen);
    if (has_accuracy(&r->t))
        fprintf(stderr, " acc %.4f", (double)p->correct / (double)p->seen);
    fprintf(stderr, " %.0f img/s %d:%02d left\033[K", rate, left / 60, left % 60);
    fflush(stderr);
}

static int on_batch(nb_trainer *tr, const nb_train_progress *p, void *ud)
{
    run *r = ud;
    double t = now();
    if (r->tty && (t - r->last_shown > 0.1 || p->batch == p->batches)) {
        show_progress(r, p);
        r->bar = true;
        r->last_shown = t;
    }
    /* A checkpoint every N batches inside an epoch; the epoch's end
     * writes its own. */
    if (r->ckpt_every && r->rank == 0 && p->batch % r->ckpt_every == 0 &&
        p->batch < p->batches && nb_trainer_save(tr, r->ckpt) != NB_OK) {
        r->rc = cli_fail_lib(r->ctx, false);
        return 1;
    }
    /* A stop signal stops after this batch; after an epoch's last, once
     * the epoch is done, so that its checkpoint comes with its validation. */
    return interrupted && p->batch < p->batches;
}

static void print_epoch(const run *r, const nb_epoch_metrics *e)
{
    bool acc = has_accuracy(&r->t);
    printf("epoch %d/%d: loss %.4f", e->epoch, r->t.epochs, e->loss);
    if (acc)
        printf(", accuracy %.4f", e->accuracy);
    if (nb_trainer_num_val(r->tr) > 0)
        printf(" - val loss %.4f", e->val_loss);
    if (nb_trainer_num_val(r->tr) > 0 && acc)
        printf(", val accuracy %.4f", e->val_accuracy);
    printf(" - %.1f s\n", e->seconds);
    fflush(stdout);
}

/* After an epoch: its line, then the checkpoint (which holds the history),
 * metrics.csv and curves.png. */
static int on_epoch(nb_trainer *tr, const nb_epoch_metrics *e, void *ud)
{
    run *r = ud;
    if (r->rank != 0)
        return interrupted != 0;
    end_bar(r);
    print_epoch(r, e);
    r->last_shown = 0;
    if (e->stopped)
        printf("early stopping: %s did not improve for %d epoch%s%s\n",
               nb_monitor_name(r->t.early_stopping.monitor), r->t.early_stopping.patience,
               r->t.early_stopping.patience == 1 ? "" : "s", e->restored ? "" : "; the weights "
               "are the last epoch's");
    if (e->restored)
        printf("restored the weights of epoch %d\n", e->restored);
    r->rc = e->best ? cli_save_weights(r->ctx, r->m, r->best, &r->classes) : CLI_OK;
    if (r->rc == CLI_OK && nb_trainer_save(tr, r->ckpt) != NB_OK)
        r->rc = cli_fail_lib(r->ctx, false);
    if (r->rc == CLI_OK)
        r->rc = write_history(r->ctx, tr, r->dir, nb_model_name(r->m), has_accuracy(&r->t));
    return r->rc != CLI_OK || interrupted;
}

/* " by SIGTERM" for the signal that stopped the run; "" for Ctrl-C. */
static const char *by_signal(int sig)
{
    return sig == SIGTERM ? " by SIGTERM" : sig == SIGHUP ? " by SIGHUP" : "";
}

/* A signal stopped training: inside an epoch its checkpoint is yet to be
 * written; after one, on_epoch wrote it.  Exits 128 + the signal. */
static int interrupted_run(run *r, int sig)
{
    const nb_train_progress *p = nb_trainer_progress(r->tr);
    if (r->rank != 0)
        return 128 + sig;
    end_bar(r);
    if (p->batch == 0) {
        fprintf(stderr, "interrupted%s: checkpoint written to %s after epoch %d; continue with "
                        "--resume\n", by_signal(sig), r->ckpt, p->epoch);
        return 128 + sig;
    }
    if (nb_trainer_save(r->tr, r->ckpt) != NB_OK)
        return cli_fail_lib(r->ctx, false);
    fprintf(stderr, "interrupted%s: checkpoint written to %s (epoch %d, batch %" PRId64 "); "
                    "continue with --resume\n", by_signal(sig), r->ckpt, p->epoch + 1, p->batch);
    return 128 + sig;
}

/* "frozen: conv1, conv2 (trainable params: 105,214 of 106,154)" when a
 * layer is frozen. */
static void print_frozen(const nb_model *m)
{
    char names[1024] = "";
    size_t len = 0;
    for (int i = 0; i < nb_model_num_layers(m); i++) {
        nb_layer_info info;
        if (nb_model_layer(m, i, &info) == NB_OK && !info.trainable && info.params > 0 &&
            len < sizeof names)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "",
                                    info.name);
    }
    if (!len)
        return;
    int64_t trainable = nb_model_num_params(m, true);
    char a[32], b[32];
    printf("frozen: %s (trainable params: %s of %s)\n", names, cli_count(trainable, a),
           cli_count(trainable + nb_model_num_params(m, false), b));
}

static int run_fit(run *r)
{
    if (r->rank == 0)
        print_frozen(r->m);
    printf("training %s on %" PRId64 " images (%" PRId64 " for validation), %s lr %g, "
           "batch %d, %d epoch%s\n",
           nb_model_name(r->m), nb_trainer_num_train(r->tr), nb_trainer_num_val(r->tr),
           nb_optim_kind_name(r->o.kind), r->o.lr, r->t.batch_size, r->t.epochs,
           r->t.epochs == 1 ? "" : "s");
    nb_trainer_callbacks cb = {on_batch, on_epoch, r};
    int rc = nb_trainer_fit(r->tr, &cb);
    if (rc == NB_OK)
        return CLI_OK;
    if (rc == NB_TRAIN_STOPPED) {
        /* Every process stopped after the same batch: for a failure one
         * of them printed (rank 0's writes), or for a signal one of them
         * had. */
        int64_t sig = interrupted;
        int code = agree(r, r->rc);
        if (code != CLI_OK)
            return code;
        if (nb_comm_first(r->ctx, &r->comm, &sig, NULL) != NB_OK)
            return fatal(r, cli_fail_lib(r->ctx, false));
        return interrupted_run(r, (int)sig);
    }
    end_bar(r);
    return fatal(r, cli_fail_lib(r->ctx, false));
}

/* Training is over: the test images take the training images' place, so
 * the peak memory is training's. */
static int run_test(run *r)
{
    nb_ctx *ctx = r->ctx;
    nb_dataset_free(r->train);
    r->train = NULL;
    r->test = nb_dataset_load(ctx, r->data, false);
    if (!r->test)
        return fatal(r, cli_fail_lib(ctx, true));
    int64_t n = nb_trainer_examples(r->tr, r->test, r->test_limit);
    if (n < 0)
        return fatal(r, cli_fail_lib(ctx, true));
    if (n != r->ntest)
        return fatal(r, cli_fail(CLI_USAGE, "%s: the test images changed while training ran",
                                 r->data));
    nb_eval_result test;
    if (nb_trainer_evaluate(r->tr, r->test, r->test_limit, &test, NULL) != NB_OK)
        return fatal(r, cli_fail_lib(ctx, false));
    if (r->rank != 0)
        return CLI_OK;
    int rc = cli_save_weights(ctx, r->m, r->weights, &r->classes);
    if (rc != CLI_OK)
        return rc;
    printf("test loss: %.4f\n", test.loss);
    if (has_accuracy(&r->t))
        printf("test accuracy: %.4f\n", test.accuracy);
    printf("wrote %s, checkpoint.safetensors, metrics.csv and curves.png in %s\n",
           "weights.safetensors", r->dir);
    return CLI_OK;
}

/* ---- the processes of an mpirun job -------------------------------------------- */

/* The default action again for the stop signals: mpirun's SIGTERM then
 * ends a process at once. */
static void default_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++)
        sigaction(stop_signals[i], &sa, NULL);
}

/* A failure the other processes may not share, while they may wait in an
 * exchange for this one: the job ends (alone, rc is returned).  Rank 0
 * printed its line; another rank waits a moment first, so that when every
 * process failed alike rank 0's line is the one (its abort ends the
 * others). */
static int fatal(run *r, int rc)
{
    if (r->size == 1)
        return rc;
    if (r->rank != 0) {
        default_signals();
        sleep(1);
    }
    cli_release(true, true);
    nb_dist_abort(rc);
    return rc;
}

/* Every process's exit code so far, agreed (alone, rc).  The first failure
 * in rank order is the job's: its process prints the line it held, naming
 * its rank unless every process failed, the others drop theirs, and all
 * return its code. */
static int agree(run *r, int rc)
{
    if (r->size == 1)
        return rc;
    int64_t code = rc, failed = rc != CLI_OK;
    int first;
    if (nb_comm_first(r->ctx, &r->comm, &code, &first) != NB_OK ||
        nb_comm_sum_i64(r->ctx, &r->comm, &failed, 1) != NB_OK) {
        cli_hold(false);
        return fatal(r, cli_fail_lib(r->ctx, false));
    }
    cli_release(code != CLI_OK && first == r->rank, failed < r->size);
    return (int)code;
}

/* The processes share the trainer's batches, and agree on what the tool
 * adds to the trainer's settings: the test examples and --resume. */
static int share(run *r)
{
    if (r->size == 1)
        return CLI_OK;
    if (nb_trainer_set_comm(r->tr, &r->comm) != NB_OK)
        return cli_fail_lib(r->ctx, true);
    int64_t mine[2] = {r->ntest, cli_get(&spec, "resume") != NULL};
    int64_t *all = malloc((size_t)r->size * sizeof mine);
    if (!all)
        return cli_fail(CLI_RUNTIME, "out of memory");
    int rc = CLI_OK;
    if (nb_comm_gather(r->ctx, &r->comm, mine, sizeof mine, all) != NB_OK)
        rc = cli_fail_lib(r->ctx, false);
    for (int k = 1; rc == CLI_OK && k < r->size; k++) {
        if (all[2 * k] != all[0])
            rc = cli_fail(CLI_USAGE, "rank %d tests on %" PRId64 " examples, rank 0 on %" PRId64
                          ": every process needs the same data at its --data", k, all[2 * k],
                          all[0]);
        else if (all[2 * k + 1] != all[1])
            rc = cli_fail(CLI_USAGE, "rank %d runs %s --resume, rank 0 %s: every process needs "
                          "the same options", k, all[2 * k + 1] ? "with" : "without",
                          all[1] ? "with it" : "without");
    }
    free(all);
    return rc;
}

/* ---- the verb ------------------------------------------------------------- */

static int train(run *r, int argc, char **argv)
{
    const char *pos[1];
    int npos, rc = cli_parse(&spec, argc, argv, pos, &npos);
    if (rc == CLI_HELP)
        return CLI_OK;
    int64_t limit = 0;
    if (rc == CLI_OK && (rc = cli_threads(&spec)) == CLI_OK &&
        (rc = cli_int64(&spec, "limit", 1, INT64_MAX, &limit)) == CLI_OK)
        rc = cli_int64(&spec, "checkpoint-every", 1, INT64_MAX, &r->ckpt_every);
    if (!(r->ctx = cli_ctx_new()))
        return fatal(r, CLI_RUNTIME);
    /* A stop signal sets `interrupted`, which the callbacks answer by
     * stopping at the end of a batch (the first, for one that came while
     * the data loaded); the test after training runs to its end. */
    struct sigaction sa = {0}, old[3];
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    for (int i = 0; i < 3; i++)
        sigaction(stop_signals[i], &sa, &old[i]);
    if (rc == CLI_OK)
        rc = run_open(r, pos[0], limit);
    if ((rc = agree(r, rc)) == CLI_OK)
        rc = agree(r, share(r));
    if (rc == CLI_OK && cli_get(&spec, "resume"))
        rc = agree(r, run_resume(r));
    /* From here rank 0 prints a failure at once; the others hold theirs
     * until they end the job (fatal). */
    cli_hold(r->rank != 0);
    if (rc == CLI_OK)
        rc = run_fit(r);
    if (rc == CLI_OK)
        rc = run_test(r);
    rc = agree(r, rc);
    for (int i = 0; i < 3; i++)
        sigaction(stop_signals[i], &old[i], NULL);
    run_close(r);
    nb_ctx_free(r->ctx);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    if (nb_dist_init(&argc, &argv) != NB_OK)
        return cli_fail(CLI_RUNTIME, "MPI would not start");
    run r = {.lock = -1, .rank = nb_dist_rank(), .size = nb_dist_size(),
             .comm = nb_dist_comm()};
    /* Rank 0 speaks for the job: the others print only their failures. */
    if (r.size > 1) {
        cli_set_rank(r.rank);
        cli_hold(true);
        if (r.rank != 0 && !freopen("/dev/null", "w", stdout))
            return fatal(&r, cli_fail(CLI_RUNTIME, "/dev/null: cannot open: %s",
                                      strerror(errno)));
    }
    int rc = train(&r, argc, argv);
    /* mpirun meets Ctrl-C, SIGTERM or SIGHUP by sending SIGTERM to every
     * process and SIGKILL a second later, and MPI_Finalize then waits for
     * mpirun until that comes: a job stopped by a signal exits at once,
     * every process past its last exchange and rank 0 past its writes. */
    if (r.size == 1 || !interrupted)
        nb_dist_finalize();
    return rc;
}
