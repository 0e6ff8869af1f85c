using System.Collections.Concurrent;
using EdgeTwin.Simulator.Faults;

namespace EdgeTwin.Simulator.Physics;

/// <summary>Something that happened in the simulation (a fault applied, servers shutting down, a machine failing).</summary>
public sealed record SimEvent(DateTimeOffset Time, string Source, string Message);

/// <summary>
/// The whole simulated site and its physics, advanced in explicit steps (deterministic for a seed:
/// nothing reads the wall clock). One lumped thermal network per room (a site has one room, or several with
/// <see cref="SiteSpec.Rooms"/>: each with its own racks and cooling units, whose air does not cross rooms):
/// <list type="bullet">
/// <item>the room air and structure form one heat capacity at the hot-air (return) temperature;</item>
/// <item>each cooling unit takes room air in and supplies it at its (lagged, capacity-limited) supply temperature;</item>
/// <item>each rack's inlet mixes the cold air that reaches it (coupling fractions of each unit's airflow) with
///   recirculated room air: a base share always, and all of its shortfall when cold air is short;</item>
/// <item>IT and fan power heat the room; cooling coils and the envelope remove heat.</item>
/// </list>
/// Thread safety: <see cref="Step"/>, <see cref="AdvanceTo"/> and <see cref="Apply"/> take <see cref="SyncRoot"/>;
/// readers that need a consistent view across several values take it too.
/// </summary>
public sealed class SimulatedSite
{
    /// <summary>Largest internal integration step; longer steps are split.</summary>
    public static readonly TimeSpan MaxStep = TimeSpan.FromSeconds(1);

    private readonly SimRandom _sensorRandom;
    private readonly Dictionary<string, SimRack> _racks;
    private readonly Dictionary<string, SimCoolingUnit> _units;
    private readonly Dictionary<string, SimPdu> _pdus;
    private readonly Dictionary<string, SimUps> _upses;
    private readonly Dictionary<string, SimMachine> _machines;
    private readonly Dictionary<string, SimRoom> _rooms;
    private readonly int[] _rackRoom; // room index of each rack
    private readonly int[] _unitRoom; // room index of each cooling unit
    private readonly double[][] _coupling; // [unit][rack]
    private readonly List<int>[] _servedByUnit; // racks each unit's controller watches
    private readonly List<SimPdu>[] _pdusByRack;
    private readonly List<FaultCommand> _scheduled = [];
    private readonly List<SimEvent> _events = [];
    private readonly ConcurrentDictionary<string, DeviceFault> _deviceFaults = new(StringComparer.Ordinal);

    public SimulatedSite(SiteSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        var roomSpecs = spec.AllRooms;
        if (!ReferenceEquals(roomSpecs[0], spec.Room) && roomSpecs[0] != spec.Room)
        {
            throw new ArgumentException($"site spec: Rooms must start with Room ('{spec.Room.Id}'), not '{roomSpecs[0].Id}'", nameof(spec));
        }

        var roomList = roomSpecs.Select((r, k) => new SimRoom(r, k, 28)).ToList();
        Rooms = roomList;
        _rooms = new Dictionary<string, SimRoom>(StringComparer.Ordinal);
        foreach (var room in roomList)
        {
            if (!_rooms.TryAdd(room.Id, room))
            {
                throw new ArgumentException($"site spec: room '{room.Id}' is listed twice", nameof(spec));
            }
        }

        Room = roomList[0];
        var seeds = new SimRandom(spec.Seed);
        _sensorRandom = new SimRandom(seeds.NextSeed());
        var rackList = spec.Racks.Select((r, i) => new SimRack(r, i, 20, new SimRandom(seeds.NextSeed()))).ToList();
        Racks = rackList;
        _racks = rackList.ToDictionary(r => r.Id, StringComparer.Ordinal);
        var unitList = spec.CoolingUnits.Select((u, j) => new SimCoolingUnit(u, j, u.SupplySetpointC, 0.6)).ToList();
        CoolingUnits = unitList;
        _units = unitList.ToDictionary(u => u.Id, StringComparer.Ordinal);
        _rackRoom = [.. rackList.Select(r => RoomIndex(r.Spec.Room, $"rack '{r.Id}'"))];
        _unitRoom = [.. unitList.Select(u => RoomIndex(u.Spec.Room, $"cooling unit '{u.Id}'"))];
        _coupling = new double[unitList.Count][];
        _servedByUnit = new List<int>[unitList.Count];
        for (var j = 0; j < unitList.Count; j++)
        {
            _coupling[j] = new double[rackList.Count];
            foreach (var (rackId, fraction) in unitList[j].Spec.Coupling)
            {
                if (!_racks.TryGetValue(rackId, out var rack))
                {
                    throw new ArgumentException($"cooling unit '{unitList[j].Id}': coupling names unknown rack '{rackId}'", nameof(spec));
                }

                if (fraction > 0 && _rackRoom[rack.Index] != _unitRoom[j])
                {
                    // A unit takes its air from its own room and supplies it there: it cannot cool another room's racks.
                    throw new ArgumentException($"cooling unit '{unitList[j].Id}' (room {roomList[_unitRoom[j]].Id}): coupling names rack '{rackId}' of room {roomList[_rackRoom[rack.Index]].Id}", nameof(spec));
                }

                _coupling[j][rack.Index] = fraction;
            }

            var serves = unitList[j].Spec.Serves.Count > 0 ? unitList[j].Spec.Serves : unitList[j].Spec.Coupling.Keys.ToList();
            _servedByUnit[j] = [.. serves.Where(_racks.ContainsKey).Select(id => _racks[id].Index)];
        }

        var upsList = spec.Upses.Select(u => new SimUps(u)).ToList();
        Upses = upsList;
        _upses = upsList.ToDictionary(u => u.Id, StringComparer.Ordinal);
        _pdusByRack = [.. rackList.Select(_ => new List<SimPdu>())];
        var pduList = new List<SimPdu>(spec.Pdus.Count);
        foreach (var p in spec.Pdus)
        {
            if (!_racks.TryGetValue(p.Rack, out var rack))
            {
                throw new ArgumentException($"PDU '{p.Id}': unknown rack '{p.Rack}'", nameof(spec));
            }

            if (p.Upstream is not null && !_upses.ContainsKey(p.Upstream))
            {
                throw new ArgumentException($"PDU '{p.Id}': unknown upstream UPS '{p.Upstream}'", nameof(spec));
            }

            var pdu = new SimPdu(p, rack);
            pduList.Add(pdu);
            _pdusByRack[rack.Index].Add(pdu);
        }

        Pdus = pduList;
        _pdus = pduList.ToDictionary(p => p.Id, StringComparer.Ordinal);
        var machineList = spec.Machines.Select(m => new SimMachine(m, new SimRandom(seeds.NextSeed()))).ToList();
        Machines = machineList;
        _machines = machineList.ToDictionary(m => m.Id, StringComparer.Ordinal);
        Line = spec.Line is null ? null : new Line.SimLine(spec.Line, new SimRandom(seeds.NextSeed()), id => _machines.TryGetValue(id, out var m) && m.State == MachineState.Failed);

        Now = spec.Start - spec.WarmUp;
        if (spec.WarmUp > TimeSpan.Zero)
        {
            StepCore(spec.WarmUp);
        }

        Now = spec.Start;
        _events.Clear();
        ResetEnergyAccounts();
    }

    public SiteSpec Spec { get; }

    public Lock SyncRoot { get; } = new();

    public DateTimeOffset Now { get; private set; }

    public TimeSpan Elapsed => Now - Spec.Start;

    /// <summary>The site's first (or only) room.</summary>
    public SimRoom Room { get; }

    /// <summary>Every room, <see cref="Room"/> first.</summary>
    public IReadOnlyList<SimRoom> Rooms { get; }

    public IReadOnlyList<SimRack> Racks { get; }

    public IReadOnlyList<SimCoolingUnit> CoolingUnits { get; }

    public IReadOnlyList<SimPdu> Pdus { get; }

    public IReadOnlyList<SimUps> Upses { get; }

    public IReadOnlyList<SimMachine> Machines { get; }

    /// <summary>The production line, or null when the site has none.</summary>
    public Line.SimLine? Line { get; }

    /// <summary>IT, fan and lighting heat put into the rooms since the last reset (kJ).</summary>
    public double HeatInKj => Rooms.Sum(r => r.HeatInKj);

    /// <summary>Heat removed by cooling and lost through the envelopes since the last reset (kJ).</summary>
    public double HeatOutKj => Rooms.Sum(r => r.HeatOutKj);

    /// <summary>The first room's temperature when the energy accounts were last reset.</summary>
    public double AccountStartRoomC => Room.AccountStartC;

    /// <summary>True while the utility feeds the site (some UPS has its mains, or there is no UPS): the meters measure.</summary>
    public bool UtilityOn => Upses.Count == 0 || Upses.Any(u => !u.UtilityFailed);

    /// <summary>
    /// What the site draws from the utility (kW), the main meter's reading: the UPS inputs, the cooling units' fans and
    /// compressors, and the rooms' lighting; 0 with the mains gone from every UPS.
    /// </summary>
    public double FacilityKw => UtilityOn ? Upses.Sum(u => u.InputKw) + CoolingUnits.Sum(u => u.FanPowerKw + u.CompressorKw) + Rooms.Sum(r => r.Spec.LightingKw) : 0;

    /// <summary>The site's PUE as the simulator knows it: <see cref="FacilityKw"/> / the PDUs' power (the IT load at their outputs).</summary>
    public double Pue => FacilityKw / Pdus.Sum(p => p.PowerKw);

    public double TotalItKw => Racks.Sum(r => r.PowerKw);

    public double TotalCoolingKw => CoolingUnits.Sum(u => u.CoolingKw);

    public SimRack Rack(string id) => Find(_racks, id, "rack");

    public SimCoolingUnit CoolingUnit(string id) => Find(_units, id, "cooling unit");

    public SimPdu Pdu(string id) => Find(_pdus, id, "PDU");

    public SimUps Ups(string id) => Find(_upses, id, "UPS");

    public SimMachine Machine(string id) => Find(_machines, id, "machine");

    public SimRoom RoomById(string id) => Find(_rooms, id, "room");

    /// <summary>The room a rack stands in.</summary>
    public SimRoom RoomOf(SimRack rack) => Rooms[_rackRoom[rack.Index]];

    /// <summary>The room a cooling unit cools.</summary>
    public SimRoom RoomOf(SimCoolingUnit unit) => Rooms[_unitRoom[unit.Index]];

    /// <summary>IT power of a room's racks at their PDUs (kW): what its partial PUE divides by.</summary>
    public double RoomItKw(string roomId)
    {
        var room = RoomById(roomId).Index;
        return Pdus.Where(p => _rackRoom[p.Rack.Index] == room).Sum(p => p.PowerKw);
    }

    /// <summary>
    /// What a room's non-IT loads draw from the utility (kW), its infrastructure sub-meter's reading: its cooling units'
    /// fans and compressors and its lighting; 0 with the mains gone from every UPS (the sub-meter is behind the main meter).
    /// </summary>
    public double RoomInfrastructureKw(string roomId)
    {
        var room = RoomById(roomId);
        return UtilityOn ? RoomInfrastructureKwCore(room.Index) : 0;
    }

    /// <summary>A room's partial PUE as the simulator knows it: (its infrastructure + its IT power) / its IT power.</summary>
    public double RoomPartialPue(string roomId)
    {
        var it = RoomItKw(roomId);
        return (RoomInfrastructureKw(roomId) + it) / it;
    }

    /// <summary>Fraction of a unit's airflow that reaches a rack (the hidden coupling).</summary>
    public double Coupling(string unitId, string rackId) => _coupling[CoolingUnit(unitId).Index][Rack(rackId).Index];

    public void ResetEnergyAccounts()
    {
        lock (SyncRoot)
        {
            foreach (var room in Rooms)
            {
                room.HeatInKj = 0;
                room.HeatOutKj = 0;
                room.AccountStartC = room.TemperatureC;
            }
        }
    }

    /// <summary>Events so far (faults applied, shutdowns, failures), oldest first.</summary>
    public IReadOnlyList<SimEvent> Events()
    {
        lock (SyncRoot)
        {
            return [.. _events];
        }
    }

    public DeviceFault DeviceFault(string deviceId) => _deviceFaults.TryGetValue(deviceId, out var f) ? f : Faults.DeviceFault.None;

    /// <summary>Advances the simulation by <paramref name="dt"/> in steps of at most <see cref="MaxStep"/>.</summary>
    public void Step(TimeSpan dt)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dt, TimeSpan.Zero);
        lock (SyncRoot)
        {
            StepCore(dt);
        }
    }

    /// <summary>Advances to <paramref name="time"/>; earlier times are ignored (time never runs back).</summary>
    public void AdvanceTo(DateTimeOffset time)
    {
        lock (SyncRoot)
        {
            if (time > Now)
            {
                StepCore(time - Now);
            }
        }
    }

    /// <summary>Applies a fault now, or schedules it when it has an <see cref="FaultCommand.At"/> later than now.</summary>
    public void Apply(FaultCommand fault)
    {
        ArgumentNullException.ThrowIfNull(fault);
        lock (SyncRoot)
        {
            Validate(fault);
            if (fault.At is { } at && Spec.Start + at > Now)
            {
                _scheduled.Add(fault);
                _scheduled.Sort((a, b) => a.At!.Value.CompareTo(b.At!.Value));
                return;
            }

            ApplyNow(fault);
        }
    }

    private void StepCore(TimeSpan total)
    {
        var end = Now + total;
        while (Now < end)
        {
            var dt = end - Now > MaxStep ? MaxStep : end - Now;
            while (_scheduled.Count > 0 && Spec.Start + _scheduled[0].At!.Value <= Now)
            {
                var fault = _scheduled[0];
                _scheduled.RemoveAt(0);
                ApplyNow(fault);
            }

            Now += dt;
            Integrate(dt.TotalSeconds);
        }
    }

    private void Integrate(double dt)
    {
        var daily = DailyLevel(Now);

        // Power chain first: which feeds are live decides which servers have power.
        foreach (var ups in Upses)
        {
            foreach (var pdu in Pdus)
            {
                if (pdu.Spec.Upstream == ups.Id)
                {
                    pdu.Powered = ups.OutputOn;
                }
            }
        }

        for (var i = 0; i < Racks.Count; i++)
        {
            var rack = Racks[i];
            var feeds = _pdusByRack[i];
            rack.Powered = feeds.Count == 0 || feeds.Any(p => p.Powered);
            rack.ExtraLoadKw = feeds.Where(p => p.Powered).Sum(p => p.OverloadKw);
            var shutdowns = rack.UpdateLoad(dt, daily, Spec.ThermalShutdownInletC);
            if (shutdowns > 0)
            {
                _events.Add(new SimEvent(Now, rack.Id, $"{shutdowns} server(s) shut down on inlet over-temperature ({rack.InletC:0.0} °C at the rack's mid height)"));
            }
        }

        // Cooling units react to the warmest inlet among the racks they serve.
        for (var j = 0; j < CoolingUnits.Count; j++)
        {
            var roomC = Rooms[_unitRoom[j]].TemperatureC;
            var warmest = double.NegativeInfinity;
            foreach (var i in _servedByUnit[j])
            {
                warmest = Math.Max(warmest, Racks[i].InletC);
            }

            CoolingUnits[j].Update(dt, roomC, double.IsNegativeInfinity(warmest) ? roomC : warmest);
        }

        // Cold air reaching each rack, and its mixed supply temperature.
        for (var i = 0; i < Racks.Count; i++)
        {
            double flow = 0, weighted = 0;
            for (var j = 0; j < CoolingUnits.Count; j++)
            {
                var f = _coupling[j][i] * CoolingUnits[j].AirflowKgPerS;
                flow += f;
                weighted += f * CoolingUnits[j].SupplyC;
            }

            var roomC = Rooms[_rackRoom[i]].TemperatureC;
            Racks[i].ColdAirKgPerS = flow;
            Racks[i].UpdateTemperatures(dt, flow > 0 ? weighted / flow : roomC, roomC);
        }

        // Each room's energy balance (explicit Euler on the fluxes of this step), its non-IT loads' energy on its sub-meter.
        var utility = UtilityOn;
        foreach (var room in Rooms)
        {
            double itKw = 0, fanKw = 0, coolingKw = 0;
            for (var i = 0; i < Racks.Count; i++)
            {
                if (_rackRoom[i] == room.Index)
                {
                    itKw += Racks[i].PowerKw;
                }
            }

            for (var j = 0; j < CoolingUnits.Count; j++)
            {
                if (_unitRoom[j] == room.Index)
                {
                    fanKw += CoolingUnits[j].FanPowerKw;
                    coolingKw += CoolingUnits[j].CoolingKw;
                }
            }

            var heatInKw = itKw + fanKw + room.Spec.LightingKw;
            var heatOutKw = coolingKw + room.EnvelopeLossKw;
            room.TemperatureC += (heatInKw - heatOutKw) * dt / room.HeatCapacityKjPerK;
            room.HeatInKj += heatInKw * dt;
            room.HeatOutKj += heatOutKw * dt;
            if (utility)
            {
                room.InfrastructureEnergyKwh += RoomInfrastructureKwCore(room.Index) * dt / 3600;
            }
        }

        for (var i = 0; i < Racks.Count; i++)
        {
            var live = _pdusByRack[i].Count(p => p.Powered);
            foreach (var pdu in _pdusByRack[i])
            {
                pdu.Update(dt, live);
            }
        }

        foreach (var ups in Upses)
        {
            var wasOn = ups.OutputOn;
            ups.Update(dt, Pdus.Where(p => p.Spec.Upstream == ups.Id).Sum(p => p.PowerKw));
            if (wasOn && !ups.OutputOn)
            {
                _events.Add(new SimEvent(Now, ups.Id, "battery exhausted: output off"));
            }
        }

        foreach (var machine in Machines)
        {
            switch (machine.Update(dt))
            {
                case BearingStep.Failed:
                    _events.Add(new SimEvent(Now, machine.Id, $"bearing failed after {machine.RunHours:0.0} h running: drive tripped (fault {machine.FaultCode})"));
                    break;
                case BearingStep.DefectStarted:
                    _events.Add(new SimEvent(Now, machine.Id, $"bearing defect initiated after {machine.RunHours:0.0} h running (hidden)"));
                    break;
            }
        }

        Line?.Step(dt);

        foreach (var rack in Racks)
        {
            rack.InletSensor.Update(rack.InletC, dt, _sensorRandom);
            rack.OutletSensor.Update(rack.OutletC, dt, _sensorRandom);
        }

        foreach (var unit in CoolingUnits)
        {
            unit.UpdateSensors(dt, _sensorRandom);
        }
    }

    private double RoomInfrastructureKwCore(int room)
    {
        var kw = Rooms[room].Spec.LightingKw;
        for (var j = 0; j < CoolingUnits.Count; j++)
        {
            if (_unitRoom[j] == room)
            {
                kw += CoolingUnits[j].FanPowerKw + CoolingUnits[j].CompressorKw;
            }
        }

        return kw;
    }

    private int RoomIndex(string? roomId, string what)
    {
        if (roomId is null)
        {
            return 0;
        }

        return _rooms.TryGetValue(roomId, out var room) ? room.Index
            : throw new ArgumentException($"site spec: {what}: unknown room '{roomId}' (known: {string.Join(", ", _rooms.Keys)})", nameof(roomId));
    }

    /// <summary>0 at the 03:00 trough, 1 at the 15:00 peak; weekends run at 70 % of the swing.</summary>
    internal static double DailyLevel(DateTimeOffset time)
    {
        var hours = time.UtcDateTime.TimeOfDay.TotalHours;
        var level = 0.5 - (0.5 * Math.Cos(2 * Math.PI * (hours - 3) / 24));
        var weekend = time.UtcDateTime.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday;
        return (weekend ? 0.7 * level : level) - 0.5;
    }

    private void Validate(FaultCommand fault)
    {
        _ = fault.Kind switch
        {
            FaultKind.CoolingStop or FaultKind.CoolingFanFail or FaultKind.CoolingRestore => (object)CoolingUnit(fault.Target),
            FaultKind.PduOverload or FaultKind.PduClear => Pdu(fault.Target),
            FaultKind.UtilityFail or FaultKind.UtilityRestore => Ups(fault.Target),
            FaultKind.MachineStop or FaultKind.MachineStart or FaultKind.MachineWear => Machine(fault.Target),
            FaultKind.RackRestart or FaultKind.ProbeLost or FaultKind.ProbeThreshold or FaultKind.ProbeOk => Rack(fault.Target),
            _ => fault.Target,
        };
    }

    private void ApplyNow(FaultCommand fault)
    {
        var message = fault.Kind switch
        {
            FaultKind.CoolingStop => SetUnit(fault.Target, CoolingUnitState.Stopped, "stopped"),
            FaultKind.CoolingFanFail => SetUnit(fault.Target, CoolingUnitState.FanFailed, "fans failed"),
            FaultKind.CoolingRestore => SetUnit(fault.Target, CoolingUnitState.Running, "running again"),
            FaultKind.PduOverload => OverloadPdu(fault.Target, fault.Argument),
            FaultKind.PduClear => ClearPdu(fault.Target),
            FaultKind.UtilityFail => SetUtility(fault.Target, failed: true),
            FaultKind.UtilityRestore => SetUtility(fault.Target, failed: false),
            FaultKind.MachineStop => SetMachine(fault.Target, MachineState.Stopped),
            FaultKind.MachineStart => SetMachine(fault.Target, MachineState.Running),
            FaultKind.MachineWear => SetWear(fault.Target, fault.Argument!.Value),
            FaultKind.RackRestart => RestartRack(fault.Target),
            FaultKind.ProbeLost => SetProbe(fault.Target, lost: true, SimRack.DefaultProbeHighThresholdC, "inlet probe disconnected from its card: comms lost, no reading"),
            FaultKind.ProbeThreshold => SetProbe(fault.Target, lost: Rack(fault.Target).ProbeLost, fault.Argument!.Value, $"inlet probe's high temperature threshold set to {fault.Argument!.Value:0.#} °C"),
            FaultKind.ProbeOk => SetProbe(fault.Target, lost: false, SimRack.DefaultProbeHighThresholdC, "inlet probe connected again, no thresholds set"),
            FaultKind.DeviceDark => SetDeviceFault(fault.Target, new DeviceFault(Dark: true), "dark: drops every request"),
            FaultKind.DeviceSlow => SetDeviceFault(fault.Target, new DeviceFault(Delay: fault.Delay!.Value), $"slow: answers {fault.Delay!.Value.TotalMilliseconds:0} ms late"),
            FaultKind.DeviceGarble => SetDeviceFault(fault.Target, new DeviceFault(GarbleProbability: fault.Argument ?? 1), $"garbles {(fault.Argument ?? 1) * 100:0} % of its answers"),
            FaultKind.DeviceOk => SetDeviceFault(fault.Target, Faults.DeviceFault.None, "answers normally again"),
            _ => throw new ArgumentOutOfRangeException(nameof(fault), fault.Kind, "unknown fault kind"),
        };
        _events.Add(new SimEvent(Now, fault.Target, message));
    }

    private string SetUnit(string id, CoolingUnitState state, string message)
    {
        CoolingUnit(id).State = state;
        return "cooling unit " + message;
    }

    private string OverloadPdu(string id, double? extraKw)
    {
        var pdu = Pdu(id);
        // By default add enough load on phase 1 to take it to 110 % of its breaker rating.
        var kw = extraKw ?? Math.Max(0.5, ((1.1 * pdu.Spec.BreakerA) - pdu.PhaseCurrentA(0)) * pdu.Spec.VoltageV * pdu.Spec.PowerFactor / 1000);
        pdu.OverloadKw = kw;
        return $"PDU overloaded: {kw:0.0} kW extra on outlet 1";
    }

    private string ClearPdu(string id)
    {
        Pdu(id).OverloadKw = 0;
        return "PDU overload removed";
    }

    private string SetUtility(string id, bool failed)
    {
        Ups(id).UtilityFailed = failed;
        return failed ? "utility failed: on battery" : "utility restored";
    }

    private string RestartRack(string id)
    {
        Rack(id).RestartServers();
        return "servers powered on again";
    }

    private string SetProbe(string id, bool lost, double highThresholdC, string message)
    {
        var rack = Rack(id);
        rack.ProbeLost = lost;
        rack.ProbeHighThresholdC = highThresholdC;
        return message;
    }

    private string SetMachine(string id, MachineState state)
    {
        var machine = Machine(id);
        if (state == MachineState.Running && machine.Wear >= 1)
        {
            // Starting a failed machine means it was repaired: new bearing.
            machine.ReplaceBearing();
        }

        machine.State = state;
        return state == MachineState.Running ? "machine started" : "machine stopped";
    }

    private string SetWear(string id, double wear)
    {
        Machine(id).Wear = wear;
        return $"bearing wear set to {wear:0.00}";
    }

    private string SetDeviceFault(string deviceId, DeviceFault fault, string message)
    {
        _deviceFaults[deviceId] = fault;
        return "device " + message;
    }

    private static T Find<T>(Dictionary<string, T> map, string id, string what) =>
        map.TryGetValue(id, out var value) ? value : throw new KeyNotFoundException($"simulated site has no {what} '{id}' (known: {string.Join(", ", map.Keys.Take(20))})");
}
