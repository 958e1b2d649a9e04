/* POP3 command parsing and number validation. */
#include "check.h"

#include "buf.h"
#include "pop3/pop3_parser.h"

#include <stdlib.h>

#define BIN(s) s, sizeof(s) - 1

static const struct pop3_limits limits = { .max_args = 2, .max_arg_len = 40 };

struct pop3_case {
    const char *in;
    size_t len;
    const char *want;  /* "KEYWORD [arg]...", or "ERR reason" */
};

static const struct pop3_case cases[] = {
    { BIN("USER bob"), "USER [bob]" },
    { BIN("user bob"), "USER [bob]" },
    { BIN("STAT"), "STAT" },
    { BIN("capa"), "CAPA" },
    { BIN("STLS"), "STLS" },
    { BIN("TOP 1 10"), "TOP [1] [10]" },
    { BIN("RETR  3 "), "RETR [3]" },
    { BIN("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
      "APOP [mrose] [c4c9334bac560ecc979e58001b3e22fb]" },
    { BIN("AUTH PLAIN"), "AUTH [PLAIN]" },
    { BIN("USER caf\xc3\xa9"), "USER [caf\xc3\xa9]" },
    { BIN("PASS my secret  pw "), "PASS rest=[my secret  pw ]" },
    { BIN("PASS"), "PASS rest=[]" },
    { BIN(""), "ERR Empty command" },
    { BIN(" USER bob"), "ERR Empty command" },
    { BIN("US"), "ERR Invalid command" },
    { BIN("USERS bob"), "ERR Invalid command" },
    { BIN("US3R bob"), "ERR Invalid command" },
    { BIN("TOP 1 2 3"), "ERR Too many arguments" },
    { BIN("USER 12345678901234567890123456789012345678901"), "ERR Argument too long" },
    { BIN("USER 1234567890123456789012345678901234567890"),
      "USER [1234567890123456789012345678901234567890]" },
    { BIN("USER a\0b"), "ERR Invalid character in argument" },
    { BIN("USER a\tb"), "ERR Invalid character in argument" },
    { BIN("PASS a\0b"), "ERR Invalid character in argument" },
    { BIN("RETR\t1"), "ERR Invalid command" },
};

static void test_commands(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct pop3_case *c = &cases[i];
        struct pop3_arg args[2];
        struct pop3_command cmd = { .args = args };
        const char *error;
        struct buf out = {0};
        if (pop3_parse_command(c->in, c->len, &limits, &cmd, &error) < 0) {
            buf_printf(&out, "ERR %s", error);
        } else {
            buf_puts(&out, cmd.keyword);
            for (size_t a = 0; a < cmd.argc; a++)
                buf_printf(&out, " [%.*s]", (int)args[a].len, args[a].data);
            if (strcmp(cmd.keyword, "PASS") == 0)
                buf_printf(&out, " rest=[%.*s]", (int)cmd.rest_len, cmd.rest ? cmd.rest : "");
        }
        buf_append(&out, "", 1);
        CHECK_MSG(strcmp(out.data, c->want) == 0, "\"%s\": got \"%s\", want \"%s\"", c->in,
                  out.data, c->want);
        buf_free(&out);
    }
}

struct number_case {
    const char *in;
    bool msgnum;
    bool ok;
    uint32_t want;
};

static const struct number_case numbers[] = {
    { "1", true, true, 1 },
    { "42", true, true, 42 },
    { "007", true, true, 7 },
    { "4294967295", true, true, 4294967295u },
    { "4294967296", true, false, 0 },
    { "99999999999999999999", true, false, 0 },
    { "0", true, false, 0 },
    { "0", false, true, 0 },
    { "", false, false, 0 },
    { "-1", false, false, 0 },
    { "+1", false, false, 0 },
    { "1a", false, false, 0 },
    { " 1", false, false, 0 },
};

static void test_numbers(void)
{
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++) {
        const struct number_case *c = &numbers[i];
        uint32_t n = 12345;
        bool ok = c->msgnum ? pop3_parse_msgnum(c->in, strlen(c->in), &n)
                            : pop3_parse_number(c->in, strlen(c->in), &n);
        CHECK_MSG(ok == c->ok, "\"%s\": ok %d", c->in, ok);
        CHECK_MSG(!ok || n == c->want, "\"%s\": got %u", c->in, (unsigned)n);
        CHECK_MSG(ok || n == 12345, "\"%s\": output written on failure", c->in);
    }
}

int main(void)
{
    test_commands();
    test_numbers();
    return check_report();
}
