"""The Slack edge: the Bolt app, its listeners, Block Kit builders and the Web API adapters.

Only this package imports slack_bolt / slack_sdk. Handlers parse a payload, call one domain function and
render its result. `reader` is the one reader of Slack message payloads (blocks, attachments, files, system
subtypes) into capture's normalised messages; `source` fetches them; `blocks.kit` holds Slack's limits;
`redaction` guards every Slack exit (Web API posts, response_url, Bolt's ack and respond) with the redactor.
"""
