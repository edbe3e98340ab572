/*
 * hello.c - fused 2-D neighborhood attention on CPU tensors with libnatten.
 *
 *   cc hello.c $(pkg-config --cflags --libs natten) -o hello && ./hello
 */
#include <natten.h>

#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    enum { B = 1, X = 16, Y = 16, H = 2, D = 32 };
    int64_t shape[5] = {B, X, Y, H, D}, lse_shape[4] = {B, X, Y, H};
    int kernel[2] = {7, 7};
    size_t n = (size_t)B * X * Y * H * D;
    float *q = malloc(n * sizeof *q), *k = malloc(n * sizeof *k), *v = malloc(n * sizeof *v);
    float *out = malloc(n * sizeof *out), *lse = malloc(n / D * sizeof *lse);
    DLDataType f32 = {kDLFloat, 32, 1};
    DLDevice cpu = {kDLCPU, 0};
    /* heads-last [B, X, Y, H, D], compact (NULL strides) */
    DLTensor tq = {q, cpu, 5, f32, shape, NULL, 0}, tk = {k, cpu, 5, f32, shape, NULL, 0},
             tv = {v, cpu, 5, f32, shape, NULL, 0}, to = {out, cpu, 5, f32, shape, NULL, 0},
             tl = {lse, cpu, 4, f32, lse_shape, NULL, 0};
    natten_context *ctx;
    natten_params params;
    natten_status st;
    double checksum = 0;

    if (!q || !k || !v || !out || !lse) return 1;
    for (size_t i = 0; i < n; i++) { /* deterministic values in [-1, 1) */
        q[i] = (float)((i * 37 + 11) % 101) / 50.5f - 1.0f;
        k[i] = (float)((i * 53 + 7) % 103) / 51.5f - 1.0f;
        v[i] = (float)((i * 29 + 3) % 107) / 53.5f - 1.0f;
    }
    if ((st = natten_context_create(&ctx)) != NATTEN_SUCCESS) {
        fprintf(stderr, "natten_context_create: %s: %s\n", natten_status_string(st), natten_last_error());
        return 1;
    }
    natten_params_init(&params, 2, kernel);   /* 7x7 window, dilation 1, stride 1, not causal */
    st = natten_fna_forward(ctx, &params, &tq, &tk, &tv, NULL, &to, &tl);
    if (st != NATTEN_SUCCESS) {
        fprintf(stderr, "natten_fna_forward: %s: %s\n", natten_status_string(st), natten_last_error());
        natten_context_destroy(ctx);
        return 1;
    }
    for (size_t i = 0; i < n; i++) checksum += out[i];
    printf("%s\nfused 2-D NA %dx%d, K 7x7, H %d, D %d on backend %s: checksum %.6f\n", natten_version_string(),
           X, Y, H, D, natten_context_last_backend(ctx), checksum);
    natten_context_destroy(ctx);
    free(q); free(k); free(v); free(out); free(lse);
    return 0;
}
