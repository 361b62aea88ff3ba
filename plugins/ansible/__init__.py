"""Ansible (`io.kestra.plugin.ansible.cli.AnsibleCLI`): ansible and ansible-playbook commands, run as scripts."""
