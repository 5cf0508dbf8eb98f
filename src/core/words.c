#include "words.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Words of a command line. `word` collects the current word; `in_word`
 * tells an empty quoted word ('') from no word at all. */
const char *words_split(const char *cmd, struct strvec *argv)
{
    size_t n = strlen(cmd);
    char *word = xmalloc(n + 1);
    size_t len = 0;
    bool in_word = false;
    const char *why = NULL;
    for (const char *p = cmd; *p && why == NULL; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n') {
            if (in_word) {
                word[len] = '\0';
                strvec_push(argv, word);
            }
            len = 0;
            in_word = false;
        } else if (*p == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (end == NULL) {
                why = "unterminated ' quote";
                break;
            }
            memcpy(word + len, p + 1, (size_t)(end - p - 1));
            len += (size_t)(end - p - 1);
            in_word = true;
            p = end;
        } else if (*p == '"') {
            in_word = true;
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
                    p++;
                word[len++] = *p;
            }
            if (*p != '"')
                why = "unterminated \" quote";
        } else if (*p == '\\') {
            if (p[1] == '\0') {
                why = "a backslash ends the line";
                break;
            }
            word[len++] = *++p;
            in_word = true;
        } else {
            word[len++] = *p;
            in_word = true;
        }
    }
    if (why == NULL && in_word) {
        word[len] = '\0';
        strvec_push(argv, word);
    }
    free(word);
    return why;
}
