/* deploy/mbedtls_config.h - the trimmed Mbed TLS 3.6 configuration healthagg is built with.
 *
 * deploy/build-mbedtls.sh compiles Debian's mbedtls source package with this file as
 * MBEDTLS_CONFIG_FILE, for the dev build and the static build alike. It keeps what a health
 * check client needs to talk to real servers and nothing else: client side only, TLS 1.2 and
 * 1.3, ECDHE key exchange with ECDSA or RSA certificates, AES-GCM and ChaCha20-Poly1305, the
 * x25519 / secp256r1 / secp384r1 groups, X.509 chain verification (PEM trust stores, IP and DNS
 * subjectAltNames), PEM client keys for mTLS, and session tickets so steady-state probes resume
 * instead of repeating the full handshake. The trade-off: servers offering only CBC suites, finite
 * field DHE, static RSA key exchange, SHA-1 signed chains or curves beyond these three are refused
 * (the handshake fails with a reason naming it); these are the last to matter on a task's
 * localhost and cost the most code. */
#ifndef HEALTHAGG_MBEDTLS_CONFIG_H
#define HEALTHAGG_MBEDTLS_CONFIG_H

/* Platform: POSIX time for certificate validity, the kernel's entropy, no deprecated API. */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
#define MBEDTLS_FS_IO /* trust store, client certificate and key files */
#define MBEDTLS_DEPRECATED_REMOVED
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C
/* Entropy from getrandom(2) (src/checks/tls.c: mbedtls_hardware_poll), never /dev/urandom: Mbed
 * TLS only calls getrandom itself with glibc, and FROM-scratch images or an empty root have no
 * /dev. */
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_ENTROPY_HARDWARE_ALT

/* Symmetric crypto: AES-GCM and ChaCha20-Poly1305 (the AEADs TLS 1.3 and modern 1.2 use). */
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_AES_FEWER_TABLES
#define MBEDTLS_GCM_C
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C
#define MBEDTLS_CIPHER_C

/* Hashes: SHA-256 and SHA-384 (suites, transcripts, certificate signatures), HKDF for TLS 1.3. */
#define MBEDTLS_MD_C
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_HKDF_C

/* Public key: RSA (PKCS#1 v1.5 and PSS signatures) and ECDSA/ECDH on three groups. */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_PKCS1_V21
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT /* rsa_pss_rsae: how TLS 1.3 servers sign with RSA keys */
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C

/* PSA crypto: TLS 1.3 runs its key schedule through it. */
#define MBEDTLS_PSA_CRYPTO_C

/* Certificates: DER/PEM parsing, chains, subjectAltName (DNS and IP). */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C

/* TLS: client only, 1.2 and 1.3, SNI, ALPN, tickets, extended master secret. */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_ALPN
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET

/* Records: a server may send full 16 KiB records; what we send (a request, a client
 * certificate chain) fits in 8 KiB. */
#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 8192

#endif
