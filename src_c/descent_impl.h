/*
 * descent_impl.h -- coarse gradient descent runs, one precision (included
 * by descent.c with T, SUF, NORMAL_CHUNK_FN, NORMAL_CHUNK and LOSS_SUM_FN
 * defined). See descent.c for the design.
 */

#define CAT2_(a, b) a##b
#define CAT_(a, b) CAT2_(a, b)
#define FN(name) CAT_(name, SUF)

/* consecutive normals of one stream, handed out in any lengths */
typedef struct {
    stefast_stream_ g;
    T chunk[NORMAL_CHUNK];
    int64_t pos; /* next unused value of chunk; NORMAL_CHUNK when empty */
} FN(normal_reader_);

static void FN(reader_init_)(FN(normal_reader_) *r, const uint64_t *key, uint64_t stream)
{
    stefast_stream_init_(&r->g, key, stream);
    r->pos = NORMAL_CHUNK;
}

static void FN(reader_take_)(FN(normal_reader_) *r, T *out, int64_t len)
{
    while (len > 0) {
        if (r->pos == NORMAL_CHUNK) {
            NORMAL_CHUNK_FN(&r->g, r->chunk);
            r->pos = 0;
        }
        int64_t k = NORMAL_CHUNK - r->pos;
        if (k > len) k = len;
        memcpy(out, r->chunk + r->pos, (size_t)k * sizeof(T));
        r->pos += k;
        out += k;
        len -= k;
    }
}

/* 32 bytes of T: the dot product's lanes (plain C vector extensions, so one
 * source serves every target; wider units split or fuse them, same bits) */
#define LANES_ ((int)(32 / sizeof(T)))
typedef T FN(vec_) __attribute__((vector_size(32)));

/* z . w with 2 LANES_ independent partial sums folded in a fixed order: they
 * stay in vector registers (a single running sum would be a chain of
 * dependent adds), and every dispatch clone rounds the same */
STEFAST_INLINE T FN(dot_)(const T *restrict z, const T *restrict w, int64_t n)
{
    FN(vec_) a, b, za, zb, wa, wb;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    int64_t j = 0;
    for (; j + 2 * LANES_ <= n; j += 2 * LANES_) {
        memcpy(&za, z + j, sizeof za);
        memcpy(&zb, z + j + LANES_, sizeof zb);
        memcpy(&wa, w + j, sizeof wa);
        memcpy(&wb, w + j + LANES_, sizeof wb);
        a += za * wa;
        b += zb * wb;
    }
    T t[2 * LANES_];
    memcpy(t, &a, sizeof a);
    memcpy(t + LANES_, &b, sizeof b);
    for (int k = 0; j < n; j++, k++) t[k] += z[j] * w[j];
    for (int half = LANES_; half >= 1; half /= 2)
        for (int k = 0; k < half; k++) t[k] += t[k + half];
    return t[0];
}

/* y[b] = v^T sigma(Z_b w) for b < B, in the sample's precision */
static void FN(predict_)(const T *Z, const T *v, const T *w, int64_t B, int64_t m,
                         int64_t n, T *y)
{
    for (int64_t b = 0; b < B; b++) {
        T yb = 0;
        for (int64_t i = 0; i < m; i++)
            if (FN(dot_)(Z + (b * m + i) * n, w, n) > 0) yb += v[i];
        y[b] = yb;
    }
}

/*
 * Sums over a batch with given labels y: loss r^2/2, grad_v sigma(Zw) r and
 * the coarse grad_w Z^T (mu'(Zw) v) r, r = v^T sigma(Z_b w) - y_b, in double.
 * The teacher-labelled case goes through the model kernel instead.
 */
STEFAST_DISPATCH
static void FN(labelled_sums_)(const T *restrict Z, const T *restrict y, const T *restrict v,
                               const T *restrict w, int64_t B, int64_t m, int64_t n,
                               const stefast_descent_options *opt, T *restrict zw,
                               double *restrict loss, double *restrict gv, double *restrict gw)
{
    *loss = 0.0;
    memset(gv, 0, (size_t)m * sizeof(double));
    memset(gw, 0, (size_t)n * sizeof(double));
    for (int64_t b = 0; b < B; b++) {
        const T *Zb = Z + b * m * n;
        T yb = 0;
        for (int64_t i = 0; i < m; i++) {
            zw[i] = FN(dot_)(Zb + i * n, w, n);
            if (zw[i] > 0) yb += v[i];
        }
        const T r = yb - y[b];
        if (r == 0) continue; /* adds exactly nothing, even where Z is huge */
        *loss += 0.5 * (double)r * (double)r;
        for (int64_t i = 0; i < m; i++) {
            if (zw[i] > 0) gv[i] += (double)r;
            const T mu = (T)mu_prime_((double)zw[i], opt);
            if (mu == 0) continue;
            const T a = opt->surrogate == NULL ? v[i] * r : mu * v[i] * r;
            const T *restrict z = Zb + i * n;
            for (int64_t j = 0; j < n; j++) gw[j] += (double)(z[j] * a);
        }
    }
}

/* a uniform integer in [0, k) from one 64-bit word (Lemire's multiply) */
static inline int64_t FN(below_)(uint64_t word, int64_t k)
{
    return (int64_t)(((unsigned __int128)word * (uint64_t)k) >> 64);
}

/* perm = a uniformly random permutation of 0..N-1 for epoch e of run r */
static void FN(shuffle_)(const uint64_t *key, uint64_t r, uint64_t e, int64_t N,
                         int64_t *perm)
{
    const uint64_t k0 = key[0] ^ STEFAST_SHUFFLE_DOMAIN, k1 = key[1];
    for (int64_t i = 0; i < N; i++) perm[i] = i;
    for (int64_t i = N - 1; i > 0; i--) {
        uint64_t a = r, b = e * (uint64_t)N + (uint64_t)i;
        STEFAST_THREEFRY2X64_20(a, b, k0, k1);
        const int64_t j = FN(below_)(a, i + 1);
        const int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* One run of Algorithm 1 on its own data; scratch holds everything it needs. */
static int FN(run_)(const T *v0, const T *w0, const T *vs, const T *ws, const T *Zgiven,
                    const T *ygiven, uint64_t run, int64_t N, int64_t m, int64_t n,
                    const stefast_descent_options *opt, T *v, T *w, int64_t *steps_taken,
                    double *final_loss, double *rec_loss, T *rec_v, T *rec_w,
                    int64_t n_rec)
{
    *steps_taken = -1; /* until the run finishes: what an interrupt leaves */
    if (stefast_interrupt_requested()) return STEFAST_EINTR;
    const int online = Zgiven == NULL && N == 0;
    const int64_t B = online ? opt->batch_size
                             : (opt->batch_size > 0 && opt->batch_size < N ? opt->batch_size : N);
    const int full_batch = !online && B == N;
    const int labelled = ygiven != NULL || opt->label_noise > 0;
    const int64_t mn = m * n;
    const int64_t per_epoch = full_batch || online ? 1 : (N + B - 1) / B;

    /* scratch: the drawn training set, a batch, labels, a permutation, sums */
    const int64_t set_len = (Zgiven == NULL && !online) ? N * mn : 0;
    const int64_t batch_len = full_batch ? 0 : B * mn;
    const int64_t nlab = online ? B : N;
    T *set = set_len ? malloc((size_t)set_len * sizeof(T)) : NULL;
    T *batch = batch_len ? malloc((size_t)batch_len * sizeof(T)) : NULL;
    T *labels = labelled ? malloc((size_t)(nlab + B + m) * sizeof(T)) : NULL;
    int64_t *perm = (!full_batch && !online) ? malloc((size_t)N * sizeof(int64_t)) : NULL;
    double *sums = malloc((size_t)(m + n) * sizeof(double));
    FN(normal_reader_) *reader = (Zgiven == NULL || opt->label_noise > 0)
                                     ? malloc(sizeof(FN(normal_reader_))) : NULL;
    int status = STEFAST_OK;
    if ((set_len && !set) || (batch_len && !batch) || (labelled && !labels) ||
        (!full_batch && !online && !perm) || !sums ||
        ((Zgiven == NULL || opt->label_noise > 0) && !reader)) {
        status = STEFAST_ENOMEM;
        goto done;
    }
    if (reader) FN(reader_init_)(reader, opt->key, run);

    /* the run's training set: its stream's first N m n values, then N label noises */
    const T *Z = Zgiven;
    if (set_len) {
        FN(reader_take_)(reader, set, set_len);
        Z = set;
    }
    T *batch_y = labels ? labels + nlab : NULL; /* B labels of the current batch */
    T *zw = labels ? labels + nlab + B : NULL;  /* m scratch values */
    if (labelled && !online) {
        if (ygiven) {
            memcpy(labels, ygiven, (size_t)N * sizeof(T));
        } else {
            FN(predict_)(Z, vs, ws, N, m, n, labels);
            T *noise = batch_y; /* borrowed in pieces of B */
            for (int64_t b0 = 0; b0 < N; b0 += B) {
                const int64_t k = N - b0 < B ? N - b0 : B;
                FN(reader_take_)(reader, noise, k);
                for (int64_t b = 0; b < k; b++)
                    labels[b0 + b] += (T)(opt->label_noise * (double)noise[b]);
            }
        }
    }

    memcpy(v, v0, (size_t)m * sizeof(T));
    memcpy(w, w0, (size_t)n * sizeof(T));
    double *gv = sums, *gw = sums + m;
    int64_t t = 0;
    for (;; t++) {
        if (stefast_interrupt_requested()) {
            status = STEFAST_EINTR;
            goto done;
        }
        /* this step's batch */
        const T *Zb = Z;
        const T *yb = labelled ? labels : NULL;
        if (online) {
            FN(reader_take_)(reader, batch, B * mn);
            Zb = batch;
            if (labelled) {
                FN(predict_)(batch, vs, ws, B, m, n, batch_y);
                FN(reader_take_)(reader, labels, B);
                for (int64_t b = 0; b < B; b++)
                    batch_y[b] += (T)(opt->label_noise * (double)labels[b]);
                yb = batch_y;
            }
        } else if (!full_batch) {
            const int64_t e = t / per_epoch, j = t % per_epoch;
            if (j == 0) FN(shuffle_)(opt->key, run, (uint64_t)e, N, perm);
            const int64_t first = j * B;
            const int64_t k = N - first < B ? N - first : B;
            for (int64_t b = 0; b < k; b++) {
                memcpy(batch + b * mn, Z + perm[first + b] * mn, (size_t)mn * sizeof(T));
                if (labelled) batch_y[b] = labels[perm[first + b]];
            }
            Zb = batch;
            yb = batch_y;
        }
        const int64_t Bt = (!online && !full_batch)
                               ? (N - (t % per_epoch) * B < B ? N - (t % per_epoch) * B : B)
                               : B;

        double loss;
        if (labelled) {
            FN(labelled_sums_)(Zb, yb, v, w, Bt, m, n, opt, zw, &loss, gv, gw);
        } else {
            status = opt->surrogate != NULL
                         ? LOSS_SUM_SURROGATE_FN(Zb, v, w, vs, ws, Bt, m, n, opt->surrogate,
                                                 &loss, gv, gw, 1)
                         : LOSS_SUM_FN(Zb, v, w, vs, ws, Bt, m, n, opt->ste, &loss, gv, gw, 1);
            if (status != STEFAST_OK) goto done;
        }
        const double inv = 1.0 / (double)Bt;
        double g2 = 0.0;
        for (int64_t i = 0; i < m + n; i++) {
            sums[i] *= inv;
            g2 += sums[i] * sums[i];
        }
        loss *= inv;
        if (opt->record_every > 0 && t % opt->record_every == 0 && t / opt->record_every < n_rec) {
            const int64_t k = t / opt->record_every;
            if (rec_loss) rec_loss[k] = loss;
            if (rec_v) memcpy(rec_v + k * m, v, (size_t)m * sizeof(T));
            if (rec_w) memcpy(rec_w + k * n, w, (size_t)n * sizeof(T));
        }
        if (t >= opt->steps || (opt->tol > 0 && sqrt(g2) < opt->tol)) {
            *final_loss = loss;
            break;
        }
        int finite = 1;
        for (int64_t i = 0; i < m; i++) {
            v[i] = (T)((double)v[i] - opt->lr * gv[i]);
            finite &= isfinite(v[i]) != 0;
        }
        for (int64_t j = 0; j < n; j++) {
            w[j] = (T)((double)w[j] - opt->lr * gw[j]);
            finite &= isfinite(w[j]) != 0;
        }
        if (!finite) { /* diverged: no loss at a non-finite point */
            t++;
            *final_loss = NAN;
            break;
        }
    }
    *steps_taken = t;
done:
    free(set);
    free(batch);
    free(labels);
    free(perm);
    free(sums);
    free(reader);
    return status;
}

stefast_status FN(stefast_descent_ensemble)(const T *v0, const T *w0, const T *v_star,
                                  const T *w_star, int64_t teacher_stride, const T *Z,
                                  const T *y, int64_t R, int64_t N, int64_t m, int64_t n,
                                  uint64_t first_run, const stefast_descent_options *opt,
                                  T *v, T *w, int64_t *steps_taken, double *final_loss,
                                  double *rec_loss, T *rec_v, T *rec_w, int64_t n_rec,
                                  int threads)
{
    if (R < 0 || N < 0 || m < 1 || n < 1 || threads < 1 || !opt || opt->steps < 0 ||
        !(opt->lr > 0) || opt->record_every < 0 || !(opt->tol >= 0) ||
        !(opt->label_noise >= 0) || (teacher_stride != 0 && teacher_stride != 1) ||
        (opt->surrogate != NULL ? !stefast_surrogate_ok_(opt->surrogate)
                                : (unsigned)opt->ste > STEFAST_STE_HARDTANH) ||
        (Z == NULL && N == 0 && opt->batch_size < 1) ||
        (Z != NULL && N < 1) || (y != NULL && (Z == NULL || opt->label_noise > 0)) ||
        opt->batch_size < 0 || n_rec < 0)
        return STEFAST_EINVAL;
    int status = STEFAST_OK;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t r = 0; r < R; r++) {
        const int64_t tr = r * teacher_stride;
        int s = FN(run_)(v0 + r * m, w0 + r * n, v_star + tr * m, w_star + tr * n,
                         Z ? Z + r * N * m * n : NULL, y ? y + r * N : NULL,
                         first_run + (uint64_t)r, N, m, n, opt, v + r * m, w + r * n,
                         steps_taken + r, final_loss + r, rec_loss ? rec_loss + r * n_rec : NULL,
                         rec_v ? rec_v + r * n_rec * m : NULL,
                         rec_w ? rec_w + r * n_rec * n : NULL, n_rec);
        if (s != STEFAST_OK) {
#pragma omp atomic write
            status = s;
        }
    }
    return status;
}

#undef LANES_
#undef FN
#undef CAT_
#undef CAT2_
