/* Settings: one table per binary, each entry a name, a default, a help line
 * and where the value goes. Values come from the defaults, then the config file
 * (`key = value`, `#` comments), then the environment (PETREL_<KEY>, upper
 * case), so a Kubernetes ConfigMap or Secret can set any of them. */
#ifndef PETREL_CONFIG_H
#define PETREL_CONFIG_H

#include <stddef.h>

enum setting_type { SETTING_STR, SETTING_INT };

struct setting {
    const char *name;
    enum setting_type type;
    const char *default_value;
    const char *help;
    void *value;            /* char ** (owned, strdup'd) or long * */
    long min, max;          /* bounds for SETTING_INT */
};

/* Applies defaults, then path (may be NULL), then the environment. On error
 * writes one line to err and returns -1. */
int config_load(struct setting *table, size_t n, const char *path, char *err, size_t errlen);
/* Longest node name: a DNS label, so a Kubernetes pod name fits; the
 * frontend's session ids and Redis keys are sized for it. */
#define CONFIG_NODE_MAX 63
/* Checks that value (the setting called name) is 1..CONFIG_NODE_MAX of
 * [A-Za-z0-9._-]: it goes into session ids, Redis keys and CLIENT SETNAME,
 * none of which may hold spaces or be cut short. 0 or -1 with err set. */
int config_check_node(const char *name, const char *value, char *err, size_t errlen);
/* Prints every setting with its default and help (for --help and the README). */
void config_print_help(const struct setting *table, size_t n);
/* Parses argv for --config FILE / -c FILE and --help; returns the path or NULL. */
const char *config_path_from_args(int argc, char **argv, int *want_help_r);
/* What every server binary (prog: "petrel-backend", ...) does first: --help,
 * the settings from file and environment, the node name (*node) and the log
 * level and format (*log_level, *log_format: settings of the table, read
 * once it is loaded). Errors go to stderr. Returns -1 to go on, or the
 * code to exit with (0 after --help, 2 for bad arguments or settings). */
int config_start(const char *prog, struct setting *table, size_t n, int argc, char **argv,
                 char *const *node, char *const *log_level, char *const *log_format);

#endif
