"""Redis tasks (`io.kestra.plugin.redis.*`): string Set/Get/Delete and list ListPush/ListPop, with the redis client."""
