/* tls.c - the TLS client byte pipe over Mbed TLS 3.6 (see tls.h), and the reasons it gives.
 *
 * Mbed TLS reads and writes through two callbacks (mbedtls_ssl_set_bio): reads are served from
 * the bytes handed to ha_tls_drive() (each drive consumes all of them, so nothing is buffered
 * here; a partial record waits inside Mbed TLS), writes go straight to the owner's send_raw.
 *
 * Verification runs with a callback that records, for the certificate nearest the leaf that
 * failed, its flags and validity dates, and the leaf's names: that is what turns Mbed TLS's flag
 * word into `certificate verify failed: expired (notAfter ...)` or `certificate name mismatch:
 * want a, got b`. insecure_skip_verify still runs verification (authmode OPTIONAL) so the
 * certificate's expiry is known, but never fails on it.
 *
 * Resumption: the session of the last good handshake (TLS 1.2 ticket or session id, TLS 1.3
 * ticket) is offered on the next attempt. It is dropped after a failed attempt, when the
 * certificate it was verified with has expired, and after an hour, so a resumed probe never hides
 * a certificate problem for long. The trade-off: the received-alert code is read from Mbed TLS's
 * private context (it has no accessor for it). */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS
#include "healthagg/tls.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#include <errno.h>
#include <sys/random.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REASON_MAX 192
#define NAMES_MAX 120
#define RESUME_MAX_AGE_S 3600

struct ha_tls {
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    mbedtls_x509_crt own_cert;
    mbedtls_pk_context own_key;
    mbedtls_ssl_session saved;
    bool have_saved;
    int64_t saved_at;
    bool insecure;
    char server_name[HA_TLS_NAME_MAX];
    char alpn[16];
    const char *alpn_list[2];

    /* the current attempt */
    ha_tls_io io;
    ha_tls_status status;
    const unsigned char *in;
    size_t in_len;
    unsigned char first[24]; /* the target's first raw bytes, to recognise plain HTTP */
    size_t first_len;
    bool cert_seen; /* the verify callback ran: a full handshake */
    int bad_depth;  /* certificate nearest the leaf with a problem; -1 = none */
    uint32_t bad_flags;
    int64_t bad_not_after, bad_not_before;
    char bad_subject[64];
    bool bad_self_signed;
    char leaf_names[NAMES_MAX];
    int64_t not_after; /* the peer certificate's, kept across resumed attempts */
    bool resumed;
    unsigned full, resumed_count;
    char reason[REASON_MAX];
    char plain[4096];
};

static void set_reason(ha_tls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(ha_tls *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
    va_end(ap);
}

static int fail_msg(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_msg(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int64_t x509_time_unix(const mbedtls_x509_time *x)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = x->year - 1900;
    tm.tm_mon = x->mon - 1;
    tm.tm_mday = x->day;
    tm.tm_hour = x->hour;
    tm.tm_min = x->min;
    tm.tm_sec = x->sec;
    return (int64_t)timegm(&tm);
}

void ha_tls_format_time(int64_t unix_seconds, char *buf, size_t len)
{
    time_t tt = (time_t)unix_seconds;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)unix_seconds);
}

/* Appends "a, b, c" (bounded) to out. */
static void append_name(char *out, size_t cap, const char *name, size_t n)
{
    size_t used = strlen(out);
    if (used + 2 + n + 1 > cap) {
        if (used + 5 < cap && strcmp(out + (used > 3 ? used - 3 : 0), "...") != 0)
            memcpy(out + used, ", ...", 6);
        return;
    }
    if (used) {
        memcpy(out + used, ", ", 2);
        used += 2;
    }
    memcpy(out + used, name, n);
    out[used + n] = '\0';
}

static void common_name(const mbedtls_x509_name *dn, char *out, size_t cap)
{
    out[0] = '\0';
    for (const mbedtls_x509_name *n = dn; n; n = n->next) {
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
            size_t len = n->val.len < cap - 1 ? n->val.len : cap - 1;
            if (len > 0)
                memcpy(out, n->val.p, len);
            out[len] = '\0';
            for (size_t i = 0; i < len; i++)
                if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
                    out[i] = '?';
            return;
        }
    }
}

/* The names a certificate is valid for: its DNS and IP subjectAltNames, else its CN. */
static void cert_names(const mbedtls_x509_crt *crt, char *out, size_t cap)
{
    out[0] = '\0';
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s && s->buf.p; s = s->next) {
        mbedtls_x509_subject_alternative_name san;
        if (mbedtls_x509_parse_subject_alt_name(&s->buf, &san) != 0)
            continue;
        const mbedtls_x509_buf *b = &san.san.unstructured_name;
        char name[64];
        if (san.type == MBEDTLS_X509_SAN_DNS_NAME) {
            size_t n = b->len < sizeof(name) - 1 ? b->len : sizeof(name) - 1;
            if (n > 0)
                memcpy(name, b->p, n);
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7e)
                    name[i] = '?';
            append_name(out, cap, name, n);
        } else if (san.type == MBEDTLS_X509_SAN_IP_ADDRESS && (b->len == 4 || b->len == 16)) {
            if (b->len == 4)
                snprintf(name, sizeof(name), "IP:%u.%u.%u.%u", b->p[0], b->p[1], b->p[2], b->p[3]);
            else {
                int w = snprintf(name, sizeof(name), "IP:");
                for (int i = 0; i < 16; i += 2)
                    w += snprintf(name + w, sizeof(name) - (size_t)w, "%s%x", i ? ":" : "",
                                  (unsigned)(b->p[i] << 8 | b->p[i + 1]));
            }
            append_name(out, cap, name, strlen(name));
        }
        mbedtls_x509_free_subject_alt_name(&san);
    }
    if (!out[0]) {
        char cn[64];
        common_name(&crt->subject, cn, sizeof(cn));
        if (cn[0])
            snprintf(out, cap, "CN=%s", cn);
        else
            snprintf(out, cap, "no names");
    }
}

static int on_verify(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    ha_tls *t = ctx;
    t->cert_seen = true;
    if (depth == 0) {
        t->not_after = x509_time_unix(&crt->valid_to);
        cert_names(crt, t->leaf_names, sizeof(t->leaf_names));
    }
    /* Called from the top of the chain down to the leaf: the last problem seen is the one
     * nearest the leaf, which is the one to report. */
    if (*flags) {
        t->bad_depth = depth;
        t->bad_flags = *flags;
        t->bad_not_after = x509_time_unix(&crt->valid_to);
        t->bad_not_before = x509_time_unix(&crt->valid_from);
        common_name(&crt->subject, t->bad_subject, sizeof(t->bad_subject));
        t->bad_self_signed =
            crt->issuer_raw.len == crt->subject_raw.len && crt->issuer_raw.len > 0 &&
            memcmp(crt->issuer_raw.p, crt->subject_raw.p, crt->issuer_raw.len) == 0;
    }
    return 0;
}

static const char *alert_name(unsigned code)
{
    switch (code) {
    case 0:
        return "close_notify";
    case 10:
        return "unexpected_message";
    case 20:
        return "bad_record_mac";
    case 22:
        return "record_overflow";
    case 40:
        return "handshake_failure";
    case 42:
        return "bad_certificate";
    case 43:
        return "unsupported_certificate";
    case 44:
        return "certificate_revoked";
    case 45:
        return "certificate_expired";
    case 46:
        return "certificate_unknown";
    case 47:
        return "illegal_parameter";
    case 48:
        return "unknown_ca";
    case 49:
        return "access_denied";
    case 50:
        return "decode_error";
    case 51:
        return "decrypt_error";
    case 70:
        return "protocol_version";
    case 71:
        return "insufficient_security";
    case 80:
        return "internal_error";
    case 86:
        return "inappropriate_fallback";
    case 90:
        return "user_canceled";
    case 109:
        return "missing_extension";
    case 110:
        return "unsupported_extension";
    case 112:
        return "unrecognized_name";
    case 116:
        return "certificate_required";
    case 120:
        return "no_application_protocol";
    }
    return NULL;
}

/* The sentence for a failed verification, from what on_verify recorded. */
static void verify_reason(ha_tls *t)
{
    uint32_t f = t->bad_flags ? t->bad_flags : mbedtls_ssl_get_verify_result(&t->ssl);
    char when[32], where[128] = "";
    if (t->bad_depth > 0)
        snprintf(where, sizeof(where), " on chain certificate %d%s%s", t->bad_depth,
                 t->bad_subject[0] ? " CN=" : "", t->bad_subject);
    if (f & MBEDTLS_X509_BADCERT_EXPIRED) {
        ha_tls_format_time(t->bad_not_after, when, sizeof(when));
        set_reason(t, "tls: certificate verify failed: expired (notAfter %s)%s", when, where);
    } else if (f & MBEDTLS_X509_BADCERT_FUTURE) {
        ha_tls_format_time(t->bad_not_before, when, sizeof(when));
        set_reason(t, "tls: certificate verify failed: not yet valid (notBefore %s)%s", when,
                   where);
    } else if (f & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
        set_reason(t, "tls: certificate name mismatch: want %s, got %s", t->server_name,
                   t->leaf_names[0] ? t->leaf_names : "no names");
    } else if (f & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
        if (t->bad_self_signed)
            set_reason(t, "tls: unknown CA (self-signed certificate%s%s)",
                       t->bad_subject[0] ? " CN=" : "", t->bad_subject);
        else
            set_reason(t, "tls: unknown CA (no trusted root for the chain%s)", where);
    } else if (f & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE)) {
        set_reason(t,
                   "tls: certificate verify failed: its key usage does not allow TLS server "
                   "authentication%s",
                   where);
    } else if (f & (MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK |
                    MBEDTLS_X509_BADCERT_BAD_KEY)) {
        set_reason(t,
                   "tls: certificate verify failed: unsupported or weak signature algorithm "
                   "or key%s",
                   where);
    } else if (f & MBEDTLS_X509_BADCERT_REVOKED) {
        set_reason(t, "tls: certificate verify failed: revoked%s", where);
    } else {
        set_reason(t, "tls: certificate verify failed (flags 0x%x)%s", (unsigned)f, where);
    }
}

static bool looks_like_tls(const ha_tls *t)
{
    /* Record content types 20-24 and major version 3. */
    return t->first_len == 0 ||
           (t->first[0] >= 20 && t->first[0] <= 24 && (t->first_len < 2 || t->first[1] == 3));
}

static void fail(ha_tls *t, int rc)
{
    bool was_open = t->status == HA_TLS_OPEN;
    t->status = HA_TLS_FAILED;
    t->have_saved = false; /* the next attempt starts from a full handshake */
    if (!looks_like_tls(t)) {
        char shown[sizeof(t->first) + 1];
        size_t n = 0;
        for (; n < t->first_len; n++) {
            unsigned char c = t->first[n];
            if (c == '\r' || c == '\n')
                break;
            shown[n] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
        }
        shown[n] = '\0';
        set_reason(t,
                   "tls: the server answered with non-TLS bytes \"%s\"; is it plain %s on a "
                   "TLS URL?",
                   shown, strncmp(shown, "HTTP/", 5) == 0 ? "HTTP" : "text");
        return;
    }
    switch (rc) {
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
    case MBEDTLS_ERR_SSL_BAD_CERTIFICATE:
        verify_reason(t);
        return;
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE: {
        unsigned code = t->ssl.in_msg ? t->ssl.in_msg[1] : 255;
        const char *name = alert_name(code);
        if (name)
            set_reason(t, "tls: alert %s from the server%s", name,
                       code == 116 || code == 42 ? " (does it require a client certificate?)" : "");
        else
            set_reason(t, "tls: alert %u from the server", code);
        return;
    }
    case MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION:
        set_reason(t, "tls: no TLS version in common with the server (we offer %s)",
                   t->conf.min_tls_version == MBEDTLS_SSL_VERSION_TLS1_3 ? "1.3" : "1.2 and 1.3");
        return;
    case MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE:
        set_reason(t, "tls: handshake failure: no cipher suite, group or signature algorithm "
                      "in common with the server");
        return;
    case MBEDTLS_ERR_SSL_NO_APPLICATION_PROTOCOL:
        set_reason(t, "tls: the server does not speak %s (ALPN)", t->alpn);
        return;
    case MBEDTLS_ERR_SSL_INVALID_MAC:
        set_reason(t, "tls: bad record MAC (corrupted or tampered data)");
        return;
    case MBEDTLS_ERR_SSL_ALLOC_FAILED:
    case MBEDTLS_ERR_MPI_ALLOC_FAILED:
    case MBEDTLS_ERR_PK_ALLOC_FAILED:
        set_reason(t, "tls: out of memory");
        return;
    case MBEDTLS_ERR_SSL_INVALID_RECORD:
    case MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE:
    case MBEDTLS_ERR_SSL_UNEXPECTED_RECORD:
    case MBEDTLS_ERR_SSL_DECODE_ERROR:
    case MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER:
        set_reason(t, "tls: protocol error: invalid message from the server (-0x%04x)", -rc);
        return;
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
        set_reason(t, "tls: the server closed the connection during the handshake");
        return;
    }
    set_reason(t, "tls: %s error -0x%04x", was_open ? "connection" : "handshake", (unsigned)-rc);
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    ha_tls *t = ctx;
    if (t->io.send_raw(t->io.ctx, buf, len) != 0)
        return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    ha_tls *t = ctx;
    if (t->in_len == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = len < t->in_len ? len : t->in_len;
    memcpy(buf, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

/* Signature algorithms we accept, in our order of preference. RSA PKCS#1 v1.5 comes before
 * RSA-PSS: a TLS 1.2 server following the client's order (OpenSSL, nginx by default) then signs
 * with v1.5, which Mbed TLS 3.6 accepts in 1.2, while 1.3 (where v1.5 is not allowed for the
 * handshake) still gets PSS. Mbed TLS 3.6 offers PSS in a 1.2+1.3 ClientHello but cannot verify
 * a PSS-signed TLS 1.2 ServerKeyExchange. */
static const uint16_t sig_algs[] = {
    MBEDTLS_TLS1_3_SIG_ECDSA_SECP256R1_SHA256,
    MBEDTLS_TLS1_3_SIG_ECDSA_SECP384R1_SHA384,
    MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA256,
    MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA384,
    MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA512,
    MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA256,
    MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA384,
    MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA512,
    MBEDTLS_TLS1_3_SIG_NONE,
};

/* Key exchange groups, the first one also the TLS 1.3 key share we send. */
static const uint16_t groups[] = {
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
};

/* The entropy source Mbed TLS polls (MBEDTLS_ENTROPY_HARDWARE_ALT in deploy/mbedtls_config.h):
 * the kernel's getrandom(2), which needs no /dev (a FROM-scratch image, an empty root). */
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    (void)data;
    *olen = 0;
    while (*olen < len) {
        ssize_t n = getrandom(output + *olen, len - *olen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
        *olen += (size_t)n;
    }
    return 0;
}

static int seed(ha_tls *t, char *err, size_t errlen)
{
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    static const unsigned char pers[] = "healthagg tls";
    int rc =
        mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy, pers, sizeof(pers) - 1);
    if (rc != 0)
        return fail_msg(err, errlen, "cannot seed the random generator (-0x%04x)", (unsigned)-rc);
    return 0;
}

static int file_error(const char *key, const char *path, char *err, size_t errlen)
{
    if (access(path, R_OK) != 0)
        return fail_msg(err, errlen, "%s: cannot read %s: %s", key, path, strerror(errno));
    return 0;
}

static int load_ca(mbedtls_x509_crt *ca, const char *path, bool from_config, char *err,
                   size_t errlen)
{
    const char *key = from_config ? "ca_file" : "ca_file (system trust store)";
    if (file_error(key, path, err, errlen) != 0)
        return -1;
    int rc = mbedtls_x509_crt_parse_file(ca, path);
    /* A positive count is the certificates that could not be parsed (a bundle may hold roots on
     * curves we do not build in): fine as long as some did. */
    if (rc < 0 || ca->raw.p == NULL)
        return fail_msg(err, errlen,
                        "%s: no certificate could be read from %s (-0x%04x); it "
                        "must hold PEM (or DER) X.509 certificates",
                        key, path, (unsigned)(rc < 0 ? -rc : 0));
    return 0;
}

static int load_client(ha_tls *t, const ha_tls_options *o, char *err, size_t errlen)
{
    if (file_error("client_cert", o->client_cert, err, errlen) != 0 ||
        file_error("client_key", o->client_key, err, errlen) != 0)
        return -1;
    int rc = mbedtls_x509_crt_parse_file(&t->own_cert, o->client_cert);
    if (rc != 0)
        return fail_msg(err, errlen,
                        "client_cert: cannot parse %s as a PEM certificate chain "
                        "(-0x%04x)",
                        o->client_cert, (unsigned)(rc < 0 ? -rc : rc));
    rc = mbedtls_pk_parse_keyfile(&t->own_key, o->client_key, NULL, mbedtls_ctr_drbg_random,
                                  &t->drbg);
    if (rc != 0)
        return fail_msg(err, errlen,
                        "client_key: cannot parse %s as an unencrypted PEM private "
                        "key (RSA or EC P-256/P-384) (-0x%04x)",
                        o->client_key, (unsigned)-rc);
    rc = mbedtls_pk_check_pair(&t->own_cert.pk, &t->own_key, mbedtls_ctr_drbg_random, &t->drbg);
    if (rc != 0)
        return fail_msg(err, errlen, "client_key: %s is not the key of the certificate in %s",
                        o->client_key, o->client_cert);
    return 0;
}

static void init_parts(ha_tls *t)
{
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_ssl_init(&t->ssl);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_x509_crt_init(&t->own_cert);
    mbedtls_pk_init(&t->own_key);
    mbedtls_ssl_session_init(&t->saved);
}

int ha_tls_options_check(const ha_tls_options *o, char *err, size_t errlen)
{
    if (o->client_cert[0] != '\0' && o->client_key[0] == '\0')
        return fail_msg(err, errlen,
                        "client_key: missing: client_cert needs its key; set "
                        "client_key to the PEM key file");
    if (o->client_key[0] != '\0' && o->client_cert[0] == '\0')
        return fail_msg(err, errlen,
                        "client_cert: missing: client_key needs its certificate; "
                        "set client_cert to the PEM certificate file");
    if (!o->insecure_skip_verify && o->ca_file[0] == '\0' &&
        access(HA_TLS_SYSTEM_CA_FILE, R_OK) != 0)
        return fail_msg(err, errlen,
                        "ca_file: required: no system trust store (%s) here; give the "
                        "PEM file of the CA that signs the target's certificate",
                        HA_TLS_SYSTEM_CA_FILE);
    ha_tls *t = NULL;
    int rc = ha_tls_new(&t, o, "localhost", NULL, err, errlen);
    ha_tls_free(t);
    return rc;
}

int ha_tls_new(ha_tls **out, const ha_tls_options *o, const char *host, const char *alpn, char *err,
               size_t errlen)
{
    *out = NULL;
    psa_status_t ps = psa_crypto_init();
    if (ps != PSA_SUCCESS)
        return fail_msg(err, errlen, "cannot initialise PSA crypto (%d)", (int)ps);
    ha_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return fail_msg(err, errlen, "out of memory");
    init_parts(t);
    if (seed(t, err, errlen) != 0) {
        ha_tls_free(t);
        return -1;
    }
    t->insecure = o->insecure_skip_verify;
    snprintf(t->server_name, sizeof(t->server_name), "%s",
             o->server_name[0] ? o->server_name : host);
    int rc;
    if (o->ca_file[0] || !o->insecure_skip_verify || access(HA_TLS_SYSTEM_CA_FILE, R_OK) == 0) {
        rc = load_ca(&t->ca, o->ca_file[0] ? o->ca_file : HA_TLS_SYSTEM_CA_FILE,
                     o->ca_file[0] != '\0', err, errlen);
        if (rc != 0) {
            ha_tls_free(t);
            return -1;
        }
    }
    if (o->client_cert[0] && load_client(t, o, err, errlen) != 0) {
        ha_tls_free(t);
        return -1;
    }
    rc = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0) {
        ha_tls_free(t);
        return fail_msg(err, errlen, "TLS configuration failed (-0x%04x)", (unsigned)-rc);
    }
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_authmode(&t->conf, t->insecure ? MBEDTLS_SSL_VERIFY_OPTIONAL
                                                    : MBEDTLS_SSL_VERIFY_REQUIRED);
    if (t->ca.raw.p)
        mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    mbedtls_ssl_conf_verify(&t->conf, on_verify, t);
    mbedtls_ssl_conf_min_tls_version(&t->conf, o->min_version == 13 ? MBEDTLS_SSL_VERSION_TLS1_3
                                                                    : MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(&t->conf, MBEDTLS_SSL_VERSION_TLS1_3);
    mbedtls_ssl_conf_sig_algs(&t->conf, sig_algs);
    mbedtls_ssl_conf_groups(&t->conf, groups);
    mbedtls_ssl_conf_session_tickets(&t->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
        &t->conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
    if (alpn && alpn[0]) {
        snprintf(t->alpn, sizeof(t->alpn), "%s", alpn);
        t->alpn_list[0] = t->alpn;
        t->alpn_list[1] = NULL;
        mbedtls_ssl_conf_alpn_protocols(&t->conf, t->alpn_list);
    }
    if (t->own_cert.raw.p) {
        rc = mbedtls_ssl_conf_own_cert(&t->conf, &t->own_cert, &t->own_key);
        if (rc != 0) {
            ha_tls_free(t);
            return fail_msg(err, errlen, "client_cert: cannot use it (-0x%04x)", (unsigned)-rc);
        }
    }
    rc = mbedtls_ssl_setup(&t->ssl, &t->conf);
    if (rc != 0) {
        ha_tls_free(t);
        return fail_msg(err, errlen, "TLS setup failed (-0x%04x)", (unsigned)-rc);
    }
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    t->status = HA_TLS_FAILED;
    set_reason(t, "tls: not started");
    *out = t;
    return 0;
}

void ha_tls_free(ha_tls *t)
{
    if (!t)
        return;
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_ssl_session_free(&t->saved);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_x509_crt_free(&t->own_cert);
    mbedtls_pk_free(&t->own_key);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t);
}

static void save_session(ha_tls *t)
{
    mbedtls_ssl_session_free(&t->saved);
    mbedtls_ssl_session_init(&t->saved);
    t->have_saved = mbedtls_ssl_get_session(&t->ssl, &t->saved) == 0;
    t->saved_at = (int64_t)time(NULL);
}

int ha_tls_begin(ha_tls *t, const ha_tls_io *io)
{
    t->io = *io;
    t->in = NULL;
    t->in_len = 0;
    t->first_len = 0;
    t->cert_seen = false;
    t->bad_depth = -1;
    t->bad_flags = 0;
    t->bad_subject[0] = '\0';
    t->resumed = false;
    t->reason[0] = '\0';
    t->status = HA_TLS_HANDSHAKING;
    int rc = mbedtls_ssl_session_reset(&t->ssl);
    if (rc == 0)
        rc = mbedtls_ssl_set_hostname(&t->ssl, t->server_name);
    if (rc != 0) {
        fail(t, rc);
        return -1;
    }
    int64_t now = (int64_t)time(NULL);
    if (t->have_saved && (now - t->saved_at > RESUME_MAX_AGE_S || now < t->saved_at ||
                          (t->not_after && now >= t->not_after)))
        t->have_saved = false;
    if (t->have_saved && mbedtls_ssl_set_session(&t->ssl, &t->saved) != 0)
        t->have_saved = false;
    return 0;
}

static void handshake_done(ha_tls *t)
{
    t->status = HA_TLS_OPEN;
    t->resumed = !t->cert_seen;
    if (t->resumed)
        t->resumed_count++;
    else
        t->full++;
    if (!t->cert_seen) {
        const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->ssl);
        if (peer)
            t->not_after = x509_time_unix(&peer->valid_to);
    }
    /* TLS 1.2 carries its ticket or session id in the handshake; TLS 1.3 tickets come after it
     * (MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET). */
    if (mbedtls_ssl_get_version_number(&t->ssl) == MBEDTLS_SSL_VERSION_TLS1_2)
        save_session(t);
}

/* Mbed TLS answers WANT_READ both when it needs bytes we do not have and, after a TLS 1.3
 * post-handshake message, to be called again: go on while our bytes are being consumed. */
static bool more_input(ha_tls *t, size_t *idle)
{
    if (t->in_len == 0)
        return false;
    if (*idle == t->in_len + 1) /* two calls in a row consumed nothing: stop, drop the rest */
        return false;
    *idle = t->in_len + 1;
    return true;
}

ha_tls_status ha_tls_drive(ha_tls *t, const char *data, size_t len)
{
    if (t->status == HA_TLS_FAILED || t->status == HA_TLS_CLOSED)
        return t->status;
    t->in = (const unsigned char *)data;
    t->in_len = len;
    while (t->first_len < sizeof(t->first) && len > 0) {
        t->first[t->first_len++] = (unsigned char)*data++;
        len--;
    }
    size_t idle = 0;
    while (t->status == HA_TLS_HANDSHAKING) {
        int rc = mbedtls_ssl_handshake(&t->ssl);
        if (rc == 0) {
            handshake_done(t);
        } else if (rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
            save_session(t);
        } else if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
            if (!more_input(t, &idle))
                return t->status;
        } else {
            fail(t, rc);
            return t->status;
        }
    }
    while (t->status == HA_TLS_OPEN) {
        int n = mbedtls_ssl_read(&t->ssl, (unsigned char *)t->plain, sizeof(t->plain));
        if (n > 0) {
            if (t->io.deliver(t->io.ctx, t->plain, (size_t)n) != 0)
                break; /* the owner is done with this attempt */
        } else if (n == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
            save_session(t);
        } else if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE) {
            if (!more_input(t, &idle))
                break;
        } else if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            t->status = HA_TLS_CLOSED;
        } else {
            fail(t, n);
        }
    }
    t->in_len = 0;
    return t->status;
}

int ha_tls_write(ha_tls *t, const char *data, size_t len)
{
    if (t->status != HA_TLS_OPEN) {
        if (!t->reason[0])
            set_reason(t, "tls: write before the handshake completed");
        return -1;
    }
    while (len > 0) {
        int n = mbedtls_ssl_write(&t->ssl, (const unsigned char *)data, len);
        if (n < 0) {
            fail(t, n);
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

void ha_tls_eof(ha_tls *t)
{
    if (t->status == HA_TLS_HANDSHAKING) {
        t->have_saved = false;
        t->status = HA_TLS_FAILED;
        if (!looks_like_tls(t))
            fail(t, 0);
        else
            set_reason(t, "tls: connection closed during the handshake%s",
                       t->first_len == 0 ? " (no answer to the ClientHello)" : "");
    } else if (t->status == HA_TLS_OPEN) {
        t->status = HA_TLS_CLOSED;
    }
}

ha_tls_status ha_tls_status_of(const ha_tls *t)
{
    return t->status;
}

const char *ha_tls_reason(const ha_tls *t)
{
    return t->reason;
}

void ha_tls_get_info(const ha_tls *t, ha_tls_info *out)
{
    out->resumed = t->resumed;
    out->not_after = t->not_after;
    out->version = t->status == HA_TLS_OPEN || t->status == HA_TLS_CLOSED
                       ? mbedtls_ssl_get_version(&t->ssl)
                       : NULL;
    out->alpn = mbedtls_ssl_get_alpn_protocol(&t->ssl);
    out->full_handshakes = t->full;
    out->resumed_handshakes = t->resumed_count;
}
