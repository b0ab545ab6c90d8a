/* log.h -- diagnostic logging for both daemons and the CLI.
 *
 * Lines go to stderr as "archfarm[-agent] LEVEL func: message". The level
 * threshold comes from $ARCHFARM_LOG (error|warn|info|debug, default info),
 * read at each call so there is no global state. Job work uses the _job
 * variants, which add "[job/attempt node]". Never pass a secret. The CLI's
 * own user-facing output does not go through here. Control characters in
 * a message (C0 but tab, DEL, UTF-8 C1) are written as '?': one call is
 * one line, and nothing a node or a build sent can drive a terminal. */
#ifndef AF_LOG_H
#define AF_LOG_H

typedef enum { AF_LOG_ERROR = 0, AF_LOG_WARN, AF_LOG_INFO, AF_LOG_DEBUG } af_log_level_t;

void af_log_write(af_log_level_t level, const char *func, const char *job, const char *node,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* True if a message at LEVEL would be printed. */
int af_log_enabled(af_log_level_t level);

#define af_error(...) af_log_write(AF_LOG_ERROR, __func__, NULL, NULL, __VA_ARGS__)
#define af_warn(...) af_log_write(AF_LOG_WARN, __func__, NULL, NULL, __VA_ARGS__)
#define af_info(...) af_log_write(AF_LOG_INFO, __func__, NULL, NULL, __VA_ARGS__)
#define af_debug(...) af_log_write(AF_LOG_DEBUG, __func__, NULL, NULL, __VA_ARGS__)

#define af_error_job(job, node, ...) af_log_write(AF_LOG_ERROR, __func__, job, node, __VA_ARGS__)
#define af_warn_job(job, node, ...) af_log_write(AF_LOG_WARN, __func__, job, node, __VA_ARGS__)
#define af_info_job(job, node, ...) af_log_write(AF_LOG_INFO, __func__, job, node, __VA_ARGS__)
#define af_debug_job(job, node, ...) af_log_write(AF_LOG_DEBUG, __func__, job, node, __VA_ARGS__)

#endif
