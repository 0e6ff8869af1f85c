namespace EdgeTwin.Agent.Hosting;

/// <summary>The agent could not start because of its configuration (sources that cannot be built). Exit code 2.</summary>
public sealed class AgentStartException : Exception
{
    public AgentStartException(IReadOnlyList<string> problems)
        : base(problems.Count == 1 ? problems[0] : $"{problems.Count} problems: " + string.Join("; ", problems))
    {
        Problems = problems;
    }

    public AgentStartException()
        : this(["the agent could not start"])
    {
    }

    public AgentStartException(string message)
        : this([message])
    {
    }

    public AgentStartException(string message, Exception innerException)
        : base(message, innerException)
    {
        Problems = [message];
    }

    public IReadOnlyList<string> Problems { get; }
}
