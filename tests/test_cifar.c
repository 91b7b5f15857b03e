/*
 * test_cifar.c - CIFAR-10 and CIFAR-100 binary files, written here in the
 * exact format (CIFAR is not on these machines): the records' labels, the
 * [3, 32, 32] shape, the red, green and blue planes in that order, the
 * class names, and truncated or corrupt files refused with the file named.
 * Pixel (i, c, y, x) of a written image is (7 i + 50 c + y + 3 x) % 256,
 * its label (3 i) % classes.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset.h"

#define PIXELS 3072

static uint8_t pixel(int i, int c, int y, int x)
{
    return (uint8_t)((7 * i + 50 * c + y + 3 * x) % 256);
}

/* n records of label_bytes labels (CIFAR-100: coarse = fine / 5) from
 * image `first` on; the caller frees. */
static uint8_t *records(int first, int n, int label_bytes, int classes, size_t *len)
{
    size_t record = (size_t)label_bytes + PIXELS;
    uint8_t *b = malloc((size_t)n * record);
    ck_assert_ptr_nonnull(b);
    for (int k = 0; k < n; k++) {
        int i = first + k, label = 3 * i % classes;
        uint8_t *r = b + (size_t)k * record;
        if (label_bytes == 2)
            *r++ = (uint8_t)(label / 5);
        *r++ = (uint8_t)label;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    *r++ = pixel(i, c, y, x);
    }
    *len = (size_t)n * record;
    return b;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_records(const char *dir, const char *name, int first, int n, int label_bytes,
                          int classes)
{
    size_t len;
    uint8_t *b = records(first, n, label_bytes, classes, &len);
    write_file(dir, name, b, len);
    free(b);
}

static void make_dir(char *dir, size_t size)
{
    snprintf(dir, size, "%s/nabla-cifar.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Images first..first+n of ds in order, as written. */
static void assert_images(const nb_dataset *ds, int first, int n, int classes)
{
    ck_assert_int_eq(nb_dataset_size(ds), n);
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 3 && shape[1] == 32 && shape[2] == 32);
    for (int k = 0; k < n; k++) {
        int i = first + k;
        ck_assert_int_eq(nb_dataset_label(ds, k), 3 * i % classes);
        const uint8_t *img = nb_dataset_image(ds, k);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y += 7)
                for (int x = 0; x < 32; x += 5)
                    ck_assert_int_eq(img[(c * 32 + y) * 32 + x], pixel(i, c, y, x));
    }
}

/* CIFAR-10: the training batches in order (3 of them, 2 + 3 + 1 images),
 * the test batch, the names; a colour batch is the planes as they are. */
START_TEST(test_cifar10)
{
    char dir[256];
    make_dir(dir, sizeof dir);
    write_records(dir, "data_batch_1.bin", 0, 2, 1, 10);
    write_records(dir, "data_batch_2.bin", 2, 3, 1, 10);
    write_records(dir, "data_batch_3.bin", 5, 1, 1, 10);
    write_records(dir, "data_batch_5.bin", 6, 1, 1, 10); /* after a gap: not read */
    write_records(dir, "test_batch.bin", 100, 4, 1, 10);
    const char *names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    write_file(dir, "batches.meta.txt", names, strlen(names));
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = nb_dataset_load(ctx, dir, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    assert_images(ds, 0, 6, 10);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 10);
    ck_assert_str_eq(nb_dataset_class_name(ds, 0), "airplane");
    ck_assert_str_eq(nb_dataset_class_name(ds, 9), "truck");
    ck_assert_str_eq(nb_dataset_origin(ds), dir);
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){1, 3, 32, 32});
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){4}, 1, x, NULL, NULL, NULL), NB_OK);
    ck_assert_double_eq_tol(nb_get(x, (2 * 32 + 5) * 32 + 6), pixel(4, 2, 5, 6) / 255.0, 1e-15);
    nb_tensor_free(x);
    nb_dataset_free(ds);
    ds = nb_dataset_load(ctx, dir, false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    assert_images(ds, 100, 4, 10);
    nb_dataset_free(ds);

    /* In memory, the same records. */
    size_t len;
    uint8_t *b = records(0, 3, 1, 10, &len);
    ds = nbi_cifar_parse(ctx, b, len, "mem", false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    assert_images(ds, 0, 3, 10);
    nb_dataset_free(ds);
    free(b);
    nb_ctx_free(ctx);
    remove_dir(dir);
}
END_TEST

/* CIFAR-100: the fine label is kept; names from fine_label_names.txt. */
START_TEST(test_cifar100)
{
    char dir[256];
    make_dir(dir, sizeof dir);
    write_records(dir, "train.bin", 0, 40, 2, 100);
    write_records(dir, "test.bin", 7, 2, 2, 100);
    write_file(dir, "fine_label_names.txt", "apple\r\naquarium_fish  \n", 23);
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = nb_dataset_load(ctx, dir, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    assert_images(ds, 0, 40, 100);
    ck_assert_int_eq(nb_dataset_label(ds, 39), 17);
    ck_assert_str_eq(nb_dataset_class_name(ds, 1), "aquarium_fish");
    ck_assert_int_eq(nb_dataset_num_classes(ds), 100); /* image 33 has label 99 */
    nb_dataset_free(ds);
    ds = nb_dataset_load(ctx, dir, false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    assert_images(ds, 7, 2, 100);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    remove_dir(dir);
}
END_TEST

/* Truncated files, bad labels, a missing split and bad names: each one
 * line naming the file. */
START_TEST(test_cifar_errors)
{
    char dir[256], want[800];
    make_dir(dir, sizeof dir);
    nb_ctx *ctx = nb_ctx_new();
    size_t len;
    uint8_t *b = records(0, 2, 1, 10, &len);
    write_file(dir, "data_batch_1.bin", b, len - 1);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    snprintf(want, sizeof want, "%s/data_batch_1.bin: 6145 bytes is not a whole number of "
             "3073-byte records (CIFAR-10: 1 label byte and 3,072 pixel bytes each): truncated?",
             dir);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);
    write_file(dir, "data_batch_1.bin", b, 0);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    tst_assert_error(ctx, NB_ERR_FORMAT, "data_batch_1.bin: 0 bytes is not a whole number");
    b[3073] = 10;
    write_file(dir, "data_batch_1.bin", b, len);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    snprintf(want, sizeof want, "%s/data_batch_1.bin: record 1's label is 10 (CIFAR-10's are 0 "
             "to 9)", dir);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);
    ck_assert_ptr_null(nbi_cifar_parse(ctx, b, len, "mem", false));
    tst_assert_error(ctx, NB_ERR_FORMAT, "mem: record 1's label is 10");
    ck_assert_ptr_null(nbi_cifar_parse(ctx, b, len, "mem", true));
    tst_assert_error(ctx, NB_ERR_FORMAT, "mem: 6146 bytes is not a whole number of 3074-byte "
                     "records (CIFAR-100: 2 label bytes");
    b[3073] = 1;
    write_file(dir, "data_batch_1.bin", b, len);
    free(b);
    /* No test batch. */
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, false));
    snprintf(want, sizeof want, "%s: CIFAR-10 files, but no test_batch.bin for the test split",
             dir);
    tst_assert_error(ctx, NB_ERR_IO, want);
    /* Names: too many, too long. */
    char names[2048] = "";
    for (int i = 0; i < 11; i++)
        strcat(names, "name\n");
    write_file(dir, "batches.meta.txt", names, strlen(names));
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    tst_assert_error(ctx, NB_ERR_FORMAT, "batches.meta.txt: more than 10 class names (CIFAR-10 "
                     "has 10 classes)");
    memset(names, 'a', 300);
    write_file(dir, "batches.meta.txt", names, 300);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    tst_assert_error(ctx, NB_ERR_FORMAT, "batches.meta.txt: line 1 is a name of 300 bytes "
                     "(at most 255)");
    write_file(dir, "batches.meta.txt", "", 0);
    nb_dataset *ds = nb_dataset_load(ctx, dir, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_ptr_null(nb_dataset_class_name(ds, 0));
    nb_dataset_free(ds);
    /* CIFAR-100's coarse label. */
    b = records(0, 1, 2, 100, &len);
    b[0] = 20;
    ck_assert_ptr_null(nbi_cifar_parse(ctx, b, len, "mem", true));
    tst_assert_error(ctx, NB_ERR_FORMAT, "mem: record 0's coarse label is 20 (CIFAR-100's are 0 "
                     "to 19)");
    free(b);
    nb_ctx_free(ctx);
    remove_dir(dir);
}
END_TEST

/* The folders the archives unpack to, read from the directory above them;
 * messages name the files inside. */
START_TEST(test_cifar_archive_folders)
{
    char dir[256], sub[320], want[800];
    make_dir(dir, sizeof dir);
    nb_ctx *ctx = nb_ctx_new();
    /* A folder of that name holding neither layout is not CIFAR. */
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    ck_assert_int_eq(mkdir(sub, 0777), 0);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    tst_assert_error(ctx, NB_ERR_IO, "no CIFAR files");
    write_records(sub, "data_batch_1.bin", 0, 2, 1, 10);
    write_records(sub, "data_batch_2.bin", 2, 1, 1, 10);
    write_file(sub, "batches.meta.txt", "airplane\nautomobile\n", 20);
    nb_dataset *ds = nb_dataset_load(ctx, dir, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    assert_images(ds, 0, 3, 10);
    ck_assert_str_eq(nb_dataset_class_name(ds, 1), "automobile");
    ck_assert_str_eq(nb_dataset_origin(ds), dir);
    nb_dataset_free(ds);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, false));
    snprintf(want, sizeof want, "%s: CIFAR-10 files, but no test_batch.bin for the test split",
             sub);
    tst_assert_error(ctx, NB_ERR_IO, want);
    write_records(sub, "test_batch.bin", 0, 1, 1, 10);
    snprintf(want, sizeof want, "%s/test_batch.bin", sub);
    ck_assert_int_eq(truncate(want, 3000), 0);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, false));
    snprintf(want, sizeof want, "%s/test_batch.bin: 3000 bytes is not a whole number", sub);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);
    remove_dir(sub);

    snprintf(sub, sizeof sub, "%s/cifar-100-binary", dir);
    ck_assert_int_eq(mkdir(sub, 0777), 0);
    write_records(sub, "train.bin", 0, 3, 2, 100);
    write_records(sub, "test.bin", 50, 2, 2, 100);
    ds = nb_dataset_load(ctx, dir, false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    assert_images(ds, 50, 2, 100);
    ck_assert_int_eq(nb_dataset_label(ds, 1), 53);
    ck_assert_ptr_null(nb_dataset_class_name(ds, 0));
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    remove_dir(dir);
}
END_TEST

/* Over the memory limit: refused before the pixels are allocated. */
START_TEST(test_cifar_memory_limit)
{
    char dir[256];
    make_dir(dir, sizeof dir);
    write_records(dir, "test_batch.bin", 0, 4, 1, 10);
    nb_ctx *ctx = nb_ctx_new();
    nb_ctx_set_memory_limit(ctx, 10000);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, false));
    tst_assert_error(ctx, NB_ERR_NOMEM, ": 4 CIFAR-10 images");
    nb_ctx_free(ctx);
    remove_dir(dir);
}
END_TEST

Suite *tst_suite_cifar(void)
{
    Suite *s = suite_create("cifar");
    TCase *tc = tcase_create("cifar");
    tcase_add_test(tc, test_cifar10);
    tcase_add_test(tc, test_cifar100);
    tcase_add_test(tc, test_cifar_errors);
    tcase_add_test(tc, test_cifar_archive_folders);
    tcase_add_test(tc, test_cifar_memory_limit);
    suite_add_tcase(s, tc);
    return s;
}
