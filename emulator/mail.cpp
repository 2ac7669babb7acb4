// graph-emulator: sendMail and the mail a test reads back.

#include "emulator/service_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/crypto.hpp"
#include "common/text.hpp"
#include "common/time_format.hpp"
#include "emulator/recurrence.hpp"
#include "emulator/time_zones.hpp"
#include "http/url.hpp"

namespace crmsync::emulator {

// -- routes

void service::impl::install_mail_routes() {
  auto self = this;

  routes.add("GET", "/_emulator/mail",
             [self](request& req, const http::path_params&, responder_ptr r) {
               http::query_params q;
               http::parse_query(req.query, q);
               auto key = http::find_param(q, "user");
               if (key == nullptr)
                 return r->reply(graph_error(req, 400, "BadRequest",
                                             "give ?user=ID or UPN",
                                             self->now()));
               std::lock_guard<std::mutex> guard{self->mtx};
               const user* found = self->find_any_user(*key);
               if (found == nullptr)
                 return r->reply(self->user_not_found(req, *key));
               json::writer w;
               w.begin_object().key("value").begin_array();
               auto mb = self->dir.mailboxes.find(found->id);
               if (mb != self->dir.mailboxes.end())
                 for (auto& m : mb->second.outbox) {
                   w.begin_object();
                   w.key("from").value(found->user_principal_name);
                   w.key("sentDateTime").value(format_rfc3339(m.sent_ms));
                   w.key("saveToSentItems").value(m.save_to_sent_items);
                   w.key("message").raw(m.message_json);
                   w.end_object();
                 }
               w.end_array().end_object();
               r->reply(json_response(200, w.take()));
             });

  // ---- Graph: sendMail
  // ---------------------------------------------------------------------

  routes.add(
      "POST", "/v1.0/users/{user}/sendMail",
      [self](request& req, const http::path_params& pp, responder_ptr r) {
        object o;
        body_error err;
        if (!parse_body(req.body, o, err))
          return r->reply(
              graph_error(req, 400, "BadRequest", err.message, self->now()));
        element message;
        size_t recipients = 0;
        if (!o["message"].get(message))
          for (const char* field :
               {"toRecipients", "ccRecipients", "bccRecipients"}) {
            simdjson::dom::array list;
            if (!message[field].get_array().get(list))
              recipients += list.size();
          }
        if (recipients == 0)
          return r->reply(graph_error(
              req, 400, "ErrorInvalidRecipients",
              "At least one recipient isn't valid., A message can't be sent "
              "because it contains no recipients.",
              self->now()));
        sent_mail m;
        m.message_json = to_json_text(message);
        bool save = true;
        if (!o["saveToSentItems"].get_bool().get(save))
          m.save_to_sent_items = save;
        std::lock_guard<std::mutex> guard{self->mtx};
        user* u = nullptr;
        auto mb = self->open_mailbox(req, r, pp[0], u);
        if (mb == nullptr)
          return;
        m.sent_ms = self->now();
        mb->outbox.push_back(std::move(m));
        response res;
        res.status = 202;
        res.headers.emplace_back("request-id", new_guid());
        r->reply(std::move(res));
      });
}

} // namespace crmsync::emulator
