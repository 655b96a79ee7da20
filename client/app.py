"""The site's Flower ClientApp: answer train requests, refuse everything else."""

from flwr.app import Context, Error, Message
from flwr.clientapp import ClientApp

from client.handler import answer_train
from client.memory import release_memory
from common.protocol import ERROR_REASONS, SiteError

app = ClientApp()


def _error_reply(msg: Message, code: SiteError) -> Message:
    # The fixed text only: the details are in the site's own log.
    return Message(error=Error(code=int(code), reason=ERROR_REASONS[code]), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    try:
        reply = answer_train(
            msg.content, node_config=dict(context.node_config), node_id=context.node_id
        )
    finally:
        release_memory()
    if isinstance(reply, SiteError):
        return _error_reply(msg, reply)
    return Message(content=reply, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return _error_reply(msg, SiteError.REFUSED_POLICY)


@app.query()
def query(msg: Message, context: Context) -> Message:
    return _error_reply(msg, SiteError.REFUSED_POLICY)
