"""The Ansible module `kestra` gitsync writes into an AnsibleCLI task's `library/` folder (Kestra's name, so that
playbooks written for Kestra run unchanged): `kestra: {outputs: {name: value}}` declares task outputs, which the
callback collects (all that `outputsMode: EXPLICIT` keeps). Ansible's code, run by ansible-playbook."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={"outputs": {"type": "dict", "required": True}}, supports_check_mode=True)
    module.exit_json(changed=False, outputs=module.params["outputs"])


if __name__ == "__main__":
    main()
